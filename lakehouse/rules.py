"""The data contract's rules as constants: one definition for the SQL, the schemas and the tests.

DWD's SQL (DuckDB) and the pandera schemas (pyarrow compute) both evaluate the patterns below
with RE2, so a row DWD keeps is a row the schema accepts.
"""

REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# Exactly yyyy-MM-dd HH:mm:ss: two-digit fields, no padding, nothing around it.
REPORT_TIME_PATTERN = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"
# A VIN made only of these is blank: Unicode separators (Zs, Zl, Zp), control characters (Cc),
# the zero-width space and the byte-order mark. Spelled so Python's re (pandera compiles the
# pattern) and RE2 (DuckDB, pyarrow) read the same set: \xhh escapes below U+0100, the other
# characters literally.
_BLANK_SET = (
    r"\x00-\x20\x7f-\xa0"
    "\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
)
BLANK_CHARACTERS = f"[{_BLANK_SET}]"
NOT_BLANK_PATTERN = f"[^{_BLANK_SET}]"
# Beyond this a reported speed is a sensor fault (km/h).
MAX_SPEED_KMH = 500.0
LNG_RANGE = (70.0, 140.0)
LAT_RANGE = (10.0, 60.0)
# Longest value, in UTF-8 bytes, that intake accepts per string column. A VIN is 17 characters
# in ISO 3779; 64 bytes leaves room for fleet-specific ids and is no VIN past it.
STRING_LIMITS = {"vin": 64, "device_id": 128, "report_time": 64, "raw_payload": 64 * 1024}
