"""The MinIO Python client at its default settings through s3warden.

Usage: matrix_minio.py ENDPOINT KEY SECRET BUCKET PREFIX CA_OR_DASH
"""
import io
import sys
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.commonconfig import CopySource

endpoint, key, secret, bucket, prefix, ca = sys.argv[1:7]
url = urlsplit(endpoint)
secure = url.scheme == "https"
http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=ca) if secure else urllib3.PoolManager()


def pattern(n):
    return (bytes(range(251)) * (n // 251 + 1))[:n]


m = Minio(url.netloc, access_key=key, secret_key=secret, secure=secure, region="us-east-1", http_client=http)
small_key = f"{prefix}/odd key +=~é&%.txt"
small = f"small:{prefix}".encode()
m.put_object(bucket, small_key, io.BytesIO(small), len(small))
m.put_object(bucket, f"{prefix}/sub/inner.txt", io.BytesIO(b"inner"), 5)
# Above the 5 MiB minimum part size: two parts.
large = pattern(6 * 1024 * 1024)
m.put_object(bucket, f"{prefix}/large.bin", io.BytesIO(large), len(large))
r = m.get_object(bucket, small_key, offset=6, length=5)
assert r.read() == small[6:11]
r.close()
r.release_conn()
names = sorted(o.object_name for o in m.list_objects(bucket, prefix=f"{prefix}/"))
assert names == sorted([small_key, f"{prefix}/large.bin", f"{prefix}/sub/"]), names
m.copy_object(bucket, f"{prefix}/copy.txt", CopySource(bucket, small_key))
m.put_object(bucket, f"{prefix}/gone.txt", io.BytesIO(b"x"), 1)
m.remove_object(bucket, f"{prefix}/gone.txt")

got = http.request("GET", m.presigned_get_object(bucket, small_key))
assert got.status == 200 and got.data == small, (got.status, got.data)
put = http.request("PUT", m.presigned_put_object(bucket, f"{prefix}/presigned.txt"), body=f"presigned:{prefix}".encode())
assert put.status == 200, (put.status, put.data)
print("ok")
