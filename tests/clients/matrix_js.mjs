// The AWS SDK for JavaScript v3 at its default settings through s3warden.
//
// Usage: node matrix_js.mjs ENDPOINT KEY SECRET BUCKET PREFIX
// (HTTPS trust comes from NODE_EXTRA_CA_CERTS.) PutObject/UploadPart carry a
// CRC32 checksum by default; presigned PUT URLs carry the CRC32 of an empty
// body, which S3 ignores.
import {
  S3Client, PutObjectCommand, GetObjectCommand, ListObjectsV2Command, CopyObjectCommand,
  DeleteObjectCommand, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

const [endpoint, key, secret, bucket, prefix] = process.argv.slice(2);
const s3 = new S3Client({
  region: "us-east-1", endpoint, forcePathStyle: true, maxAttempts: 1,
  credentials: { accessKeyId: key, secretAccessKey: secret },
});
const pattern = (n) => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = i % 251; return b; };
const assert = (ok, what) => { if (!ok) { throw new Error(`assertion failed: ${what}`); } };

const smallKey = `${prefix}/odd key +=~é&%.txt`;
const small = Buffer.from(`small:${prefix}`);
await s3.send(new PutObjectCommand({ Bucket: bucket, Key: smallKey, Body: small }));
await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/sub/inner.txt`, Body: "inner" }));

// Multipart: two parts, the first at the 5 MiB minimum.
const large = pattern(6 * 1024 * 1024);
const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${prefix}/large.bin` }));
const parts = [];
for (const [i, [a, b]] of [[0, 5 * 1024 * 1024], [5 * 1024 * 1024, large.length]].entries()) {
  const r = await s3.send(new UploadPartCommand({
    Bucket: bucket, Key: `${prefix}/large.bin`, UploadId, PartNumber: i + 1, Body: large.subarray(a, b),
  }));
  parts.push({ PartNumber: i + 1, ETag: r.ETag, ChecksumCRC32: r.ChecksumCRC32 });
}
await s3.send(new CompleteMultipartUploadCommand({
  Bucket: bucket, Key: `${prefix}/large.bin`, UploadId, MultipartUpload: { Parts: parts },
}));

const ranged = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: smallKey, Range: "bytes=6-10" }));
const rangedBody = Buffer.from(await ranged.Body.transformToByteArray());
assert(rangedBody.equals(small.subarray(6, 11)), `range ${rangedBody}`);
const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, Delimiter: "/" }));
const keys = listed.Contents.map((o) => o.Key).sort();
assert(JSON.stringify(keys) === JSON.stringify([`${prefix}/large.bin`, smallKey].sort()), `keys ${keys}`);
assert(listed.CommonPrefixes.length === 1 && listed.CommonPrefixes[0].Prefix === `${prefix}/sub/`, "prefixes");
await s3.send(new CopyObjectCommand({
  Bucket: bucket, Key: `${prefix}/copy.txt`, CopySource: `${bucket}/${encodeURIComponent(smallKey)}`,
}));
await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/gone.txt`, Body: "x" }));
await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}/gone.txt` }));

const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: smallKey }), { expiresIn: 300 });
const got = await fetch(getUrl);
const gotBody = Buffer.from(await got.arrayBuffer());
assert(got.status === 200 && gotBody.equals(small), `presigned get ${got.status} ${gotBody}`);
const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/presigned.txt` }), { expiresIn: 300 });
assert(putUrl.includes("x-amz-checksum-crc32="), "the SDK still adds the empty-body checksum");
const put = await fetch(putUrl, { method: "PUT", body: `presigned:${prefix}` });
const putBody = await put.text();
assert(put.status === 200, `presigned put ${put.status} ${putBody}`);
console.log("ok");
