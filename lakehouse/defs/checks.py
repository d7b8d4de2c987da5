"""Names of the asset checks, shared by the assets that report them and by tests."""

SCHEMA_CHECK = "pandera_schema"
NO_QUARANTINED_FILES_CHECK = "no_quarantined_files"
DAY_COMPLETE_CHECK = "all_hours_present"
