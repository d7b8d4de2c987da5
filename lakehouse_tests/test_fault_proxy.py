"""The fault-injecting S3 proxy itself: faithful over real HTTP, and each fault seen as intended.

Clients are the real ones (pyarrow's S3FileSystem on the AWS C++ SDK/libcurl, and boto3) talking
to the real moto server through the proxy; framing edge cases moto never produces (chunked and
close-delimited responses, raw chunked request bodies) use a tiny stdlib upstream.
"""

from __future__ import annotations

import http.client
import io
import os
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from lakehouse_tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY, count_list_requests
from lakehouse_tests.fault_proxy import Delay, FaultProxy, Reset, Status, Truncate

MiB = 1024 * 1024
# botocore's "max_attempts" counts retries, not attempts: {"max_attempts": 1} still retries once.
NO_RETRIES = {"total_max_attempts": 1}
TABLE = pa.table({"vin": [f"VIN{i:06d}" for i in range(20_000)], "speed": range(20_000)})


def s3fs(proxy: FaultProxy, attempts: int = 1, **options: object) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem through the proxy, with an explicit retry budget."""
    return pafs.S3FileSystem(
        access_key=S3_ACCESS_KEY,
        secret_key=S3_SECRET_KEY,
        region="us-east-1",
        endpoint_override=proxy.url.removeprefix("http://"),
        scheme="http",
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=attempts),
        **options,
    )


def s3_client(proxy: FaultProxy, **config: object) -> BaseClient:
    """A boto3 client through the proxy (credentials and region from the fixture's env)."""
    return boto3.client("s3", endpoint_url=proxy.url, config=Config(**config))


@pytest.fixture
def bucket(s3_faults: FaultProxy) -> str:
    name = f"faults-{uuid.uuid4().hex[:12]}"
    s3_client(s3_faults).create_bucket(Bucket=name)
    s3_faults.clear_log()
    return name


# --- faithful forwarding ------------------------------------------------------------------------


def test_s3_faults_fixture_points_the_environment_at_the_proxy(s3_faults, s3_env):
    assert os.environ["AWS_ENDPOINT_URL"] == s3_faults.url == s3_env["AWS_ENDPOINT_URL"]
    assert os.environ["AWS_ACCESS_KEY_ID"] == S3_ACCESS_KEY
    assert s3_faults.upstream != s3_faults.url


def test_pyarrow_filesystem_works_through_the_proxy(s3_faults, bucket):
    fs = s3fs(s3_faults)
    big = os.urandom(12 * MiB)
    with fs.open_output_stream(f"{bucket}/big.bin") as out:
        out.write(big)
    parts = s3_faults.requests("PUT", rf"^/{bucket}/big\.bin$", query_regex="partNumber=")
    assert len(parts) >= 2
    assert {e.status for e in parts} == {200}
    assert fs.open_input_file(f"{bucket}/big.bin").read() == big

    pq.write_table(TABLE, f"{bucket}/raw/t.parquet", filesystem=fs, row_group_size=5_000)
    s3_faults.clear_log()
    assert pq.read_table(f"{bucket}/raw/t.parquet", filesystem=fs).equals(TABLE)
    # A Parquet read is HEADs (size) and ranged GETs (footer, then column chunks), never a
    # whole-object GET.
    gets = s3_faults.requests("GET", r"/t\.parquet$")
    assert gets
    assert all(e.headers.get("range", "").startswith("bytes=") for e in gets)
    assert {e.status for e in gets} == {206}
    assert s3_faults.count("HEAD", r"/t\.parquet$") >= 1

    listed = fs.get_file_info(pafs.FileSelector(bucket, recursive=True))
    assert {i.path for i in listed if i.is_file} == {
        f"{bucket}/big.bin",
        f"{bucket}/raw/t.parquet",
    }
    fs.move(f"{bucket}/big.bin", f"{bucket}/moved.bin")
    assert fs.get_file_info(f"{bucket}/moved.bin").size == len(big)
    fs.delete_file(f"{bucket}/moved.bin")
    assert fs.get_file_info(f"{bucket}/moved.bin").type == pafs.FileType.NotFound
    assert s3_faults.count("DELETE") >= 1
    # Kept-alive connections: far fewer connections than requests.
    assert s3_faults.connections * 2 < len(s3_faults.log)


def test_boto3_works_through_the_proxy(s3_faults, bucket):
    s3 = s3_client(s3_faults)
    s3.put_object(Bucket=bucket, Key="small", Body=b"hello")
    body = os.urandom(6 * MiB)
    multipart = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.upload_fileobj(io.BytesIO(body), bucket, "multi", Config=multipart)
    assert s3_faults.count("PUT", r"/multi$", query_regex="partNumber=") == 2

    assert s3.head_object(Bucket=bucket, Key="multi")["ContentLength"] == len(body)
    ranged = s3.get_object(Bucket=bucket, Key="multi", Range="bytes=10-19")
    assert ranged["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert ranged["Body"].read() == body[10:20]
    small = s3.get_object(Bucket=bucket, Key="small")
    assert small["Body"].read() == b"hello"
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key="small", IfNoneMatch=small["ETag"])
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["multi", "small"]
    s3.delete_object(Bucket=bucket, Key="small")
    assert {200, 204, 206, 304} <= {e.status for e in s3_faults.log}


# --- faults -------------------------------------------------------------------------------------


def test_status_fault_fails_exactly_n_matching_requests(s3_faults, bucket):
    s3 = s3_client(s3_faults, retries=NO_RETRIES)
    s3.put_object(Bucket=bucket, Key="raw/a.parquet", Body=b"parquet")
    s3.put_object(Bucket=bucket, Key="raw/b.orc", Body=b"orc")
    rule = s3_faults.add_fault(
        Status(503, s3_code="SlowDown"),
        method="GET",
        path_regex=rf"^/{bucket}/raw/.*\.parquet$",
        times=3,
    )
    for _ in range(3):
        with pytest.raises(ClientError) as caught:
            s3.get_object(Bucket=bucket, Key="raw/a.parquet")
        assert caught.value.response["Error"]["Code"] == "SlowDown"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        # Requests the rule does not target pass meanwhile, on the same connection.
        assert s3.get_object(Bucket=bucket, Key="raw/b.orc")["Body"].read() == b"orc"
        assert s3.head_object(Bucket=bucket, Key="raw/a.parquet")["ContentLength"] == 7
    assert s3.get_object(Bucket=bucket, Key="raw/a.parquet")["Body"].read() == b"parquet"
    assert rule.fired == 3
    assert rule.exhausted
    statuses = [e.status for e in s3_faults.requests("GET", r"\.parquet$")]
    assert statuses == [503, 503, 503, 200]
    assert s3_faults.count(faulted=True) == 3


def test_botocore_max_attempts_counts_retries_not_attempts(s3_faults, bucket):
    s3 = s3_client(s3_faults, retries={"max_attempts": 1})
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3_faults.add_fault(Status(503), method="GET", times=1)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    assert [e.status for e in s3_faults.requests("GET")] == [503, 200]


def test_pyarrow_fails_loudly_on_a_throttled_ranged_read(s3_faults, bucket):
    fs = s3fs(s3_faults, attempts=1)
    path = f"{bucket}/raw/t.parquet"
    pq.write_table(TABLE, path, filesystem=fs)
    rule = s3_faults.add_fault(
        Status(503, s3_code="SlowDown"),
        method="GET",
        path_regex=r"/raw/.*\.parquet$",
        when=lambda req: "range" in req.headers,
    )
    # The AWS C++ SDK writes a GetObject error body into pyarrow's read buffer, so it does not
    # always get the S3 code back out: SLOW_DOWN, or SERVICE_UNAVAILABLE from the status alone.
    with pytest.raises(OSError, match=r"AWS Error (SLOW_DOWN|SERVICE_UNAVAILABLE)"):
        pq.read_table(path, filesystem=fs)
    assert rule.fired == 1
    assert s3_faults.requests(faulted=True)[0].method == "GET"
    assert pq.read_table(path, filesystem=fs).equals(TABLE)


def test_reset_is_a_connection_error_not_a_response(s3_faults, bucket):
    s3 = s3_client(s3_faults, retries=NO_RETRIES)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3_faults.add_fault(Reset(), method="GET")
    with pytest.raises(ConnectionClosedError):
        s3.get_object(Bucket=bucket, Key="k")
    (entry,) = s3_faults.requests("GET")
    assert entry.faulted
    assert entry.status is None
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    # after_upstream: the write lands, only its answer is lost.
    s3_faults.add_fault(Reset(after_upstream=True), method="PUT")
    with pytest.raises(ConnectionClosedError):
        s3.put_object(Bucket=bucket, Key="landed", Body=b"y")
    assert s3.get_object(Bucket=bucket, Key="landed")["Body"].read() == b"y"


def test_delay_provokes_client_timeouts(s3_faults, bucket):
    s3 = s3_client(s3_faults, retries=NO_RETRIES, read_timeout=0.2)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3_faults.add_fault(Delay(0.8), method="GET")
    with pytest.raises(ReadTimeoutError):
        s3.get_object(Bucket=bucket, Key="k")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    # pyarrow's request_timeout is libcurl's low-speed limit, in whole seconds (1 s minimum).
    fs = s3fs(s3_faults, attempts=1, request_timeout=1)
    s3_faults.add_fault(Delay(2), method="GET")
    started = time.monotonic()
    with pytest.raises(OSError, match="Timeout was reached"):
        fs.open_input_file(f"{bucket}/k").read()
    assert time.monotonic() - started < 1.9


def test_truncated_bodies_are_errors_not_short_files(s3_faults, bucket):
    s3 = s3_client(s3_faults, retries=NO_RETRIES)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x" * 1000)
    rule = s3_faults.add_fault(Truncate(10), method="GET")
    response = s3.get_object(Bucket=bucket, Key="k")
    with pytest.raises(ResponseStreamingError):
        response["Body"].read()
    assert rule.fired == 1
    path = f"{bucket}/t.parquet"
    pq.write_table(TABLE, path, filesystem=s3fs(s3_faults))
    s3_faults.add_fault(Truncate(100), method="GET")
    with pytest.raises(OSError, match="partial file"):
        pq.read_table(path, filesystem=s3fs(s3_faults, attempts=1))
    retried = s3_faults.add_fault(Truncate(100), method="GET", times=2)
    assert pq.read_table(path, filesystem=s3fs(s3_faults, attempts=3)).equals(TABLE)
    assert retried.fired == 2


def test_outage_faults_everything_until_cleared(s3_faults, bucket):
    s3 = s3_client(s3_faults, retries=NO_RETRIES)
    s3_faults.add_fault(Status(503), times=None)
    outage = s3_faults.outage(Status(500))  # ahead of every other rule
    with pytest.raises(ClientError) as caught:
        s3.list_objects_v2(Bucket=bucket)
    assert caught.value.response["Error"]["Code"] == "InternalError"
    with pytest.raises(ClientError) as caught:
        s3.head_bucket(Bucket=bucket)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert outage.fired == 2
    s3_faults.clear()
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert [e.status for e in s3_faults.log] == [500, 500, 200]


def test_request_log_counts_match_the_server_log(s3_faults, bucket, s3_request_log: Path):
    since = s3_request_log.stat().st_size
    s3 = s3_client(s3_faults)
    for _ in range(3):
        s3.list_objects_v2(Bucket=bucket, Prefix="raw/")
    s3fs(s3_faults).get_file_info(pafs.FileSelector(bucket, recursive=True))
    listed = s3_faults.count("GET", rf"^/{bucket}$", query_regex="list-type=2")
    assert listed == count_list_requests(s3_request_log, bucket, since) == 4
    assert s3_faults.count(faulted=True) == 0


# --- framing moto never produces, and shutdown --------------------------------------------------


class _Upstream(BaseHTTPRequestHandler):
    """Answers with the framings under test; PUT echoes the raw request body it received."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        elif self.path == "/eof":  # no length: the body ends when the connection does
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until close")
        elif self.path == "/same":
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.end_headers()
        else:
            self.send_response(204)
            self.end_headers()

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "12345")
        self.end_headers()

    def do_PUT(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            raw = self.rfile.readline()
            while size := int(raw.splitlines()[-1].split(b";")[0], 16):
                raw += self.rfile.read(size + 2) + self.rfile.readline()
            while not raw.endswith(b"\r\n\r\n"):  # trailer fields, then the empty line
                raw += self.rfile.readline()
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("X-Seen-Host", self.headers["Host"])
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_response_framings_survive_on_one_kept_alive_connection(upstream):
    with FaultProxy(upstream) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)

        def call(method: str, path: str, **kw: object) -> tuple[http.client.HTTPResponse, bytes]:
            conn.request(method, path, **kw)
            response = conn.getresponse()
            return response, response.read()

        response, body = call("GET", "/chunked")
        assert (response.status, body) == (200, b"hello world")
        response, body = call("GET", "/eof")  # re-chunked, so our connection survives
        assert (response.status, body) == (200, b"until close")
        response, body = call("HEAD", "/sized")
        assert (response.status, response.getheader("Content-Length"), body) == (200, "12345", b"")
        response, body = call("GET", "/same")
        assert (response.status, response.getheader("ETag"), body) == (304, '"v1"', b"")
        response, body = call("GET", "/nothing")
        assert (response.status, body) == (204, b"")

        # A chunked request body goes upstream byte for byte: extensions, trailer and all.
        raw = b"3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nx-amz-checksum-crc32: AAAAAA==\r\n\r\n"
        conn.putrequest("PUT", "/echo", skip_accept_encoding=True)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        conn.send(raw)
        response = conn.getresponse()
        assert response.read() == raw
        assert response.getheader("X-Seen-Host") == upstream.removeprefix("http://")
        # Expect: 100-continue is answered by the proxy; the client still gets one final answer.
        response, body = call("PUT", "/echo", body=b"payload", headers={"Expect": "100-continue"})
        assert (response.status, body) == (200, b"payload")
        assert proxy.connections == 1
        assert [e.status for e in proxy.log] == [200, 200, 200, 304, 204, 200, 200]
        conn.close()


def test_preserve_host_keeps_the_signed_host_header(upstream):
    with FaultProxy(upstream, preserve_host=True) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        conn.request("PUT", "/echo", body=b"x")
        response = conn.getresponse()
        assert response.read() == b"x"
        assert response.getheader("X-Seen-Host") == f"127.0.0.1:{proxy.port}"
        conn.close()


def test_status_fault_on_an_expect_continue_upload_closes_the_connection(upstream):
    with FaultProxy(upstream) as proxy:
        proxy.add_fault(Status(503), method="PUT")
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        conn.putrequest("PUT", "/echo")
        conn.putheader("Content-Length", "7")
        conn.putheader("Expect", "100-continue")
        conn.endheaders()  # the body is held back, as an SDK waiting for "100 Continue" does
        response = conn.getresponse()
        assert response.status == 503
        assert response.getheader("Connection") == "close"
        assert response.getheader("Content-Type") == "application/xml"
        assert b"<Code>SlowDown</Code>" in response.read()
        conn.close()


def test_stop_cuts_kept_alive_and_stalled_connections(upstream):
    proxy = FaultProxy(upstream).start()
    idle = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    idle.request("GET", "/chunked")
    assert idle.getresponse().read() == b"hello world"
    proxy.add_fault(Delay(30), method="GET")
    stalled = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    stalled.request("GET", "/chunked")
    while proxy.count(faulted=True) == 0:
        time.sleep(0.01)
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 2
    assert not [t for t in threading.enumerate() if t.name.startswith("fault-proxy")]
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        stalled.getresponse()
    idle.close()
    stalled.close()
