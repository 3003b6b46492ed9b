"""S3 bucket and service handlers: ListBuckets, HeadBucket, CreateBucket,
GetBucketLocation, ListObjectsV2 and DeleteObjects; and `register`, which mounts
every S3 handler on the family."""

from __future__ import annotations

import base64
import hashlib

from aiohttp import web

from registry.api import s3_objects, s3_xml
from registry.api.common import Context, read_bounded, visible
from registry.api.s3 import S3Error, S3Family, S3Route, check_key
from registry.core.errors import ObjectError

MAX_KEYS = 1000
# DeleteObjects names at most 1,000 keys of at most 1,024 bytes (escaped in XML).
MAX_DELETE_BODY = 2 << 20
MAX_DELETE_KEYS = 1000
# CreateBucket's optional body is a LocationConstraint.
MAX_CREATE_BODY = 64 << 10
OWNER = "registry"


def _xml(doc: s3_xml.Doc) -> web.Response:
    return web.Response(body=doc.bytes(), headers={"Content-Type": "application/xml"})


def _no_such_bucket() -> ObjectError:
    return ObjectError("NoSuchBucket", "the specified bucket does not exist", 404)


async def list_buckets(request: web.BaseRequest, route: S3Route,
                       ctx: Context) -> web.StreamResponse:
    doc = s3_xml.Doc("ListAllMyBucketsResult")
    owner = doc.add(None, "Owner")
    doc.add(owner, "ID", OWNER)
    doc.add(owner, "DisplayName", OWNER)
    listed = doc.add(None, "Buckets")
    buckets = await ctx.registry.objects.buckets()
    shown = set(visible(request, ctx, "s3", [b.name for b in buckets]))
    for bucket in (b for b in buckets if b.name in shown):
        b = doc.add(listed, "Bucket")
        doc.add(b, "Name", bucket.name)
        doc.add(b, "CreationDate", s3_xml.iso_date(bucket.created))
    return _xml(doc)


async def head_bucket(request: web.BaseRequest, route: S3Route,
                      ctx: Context) -> web.StreamResponse:
    if not await ctx.registry.objects.bucket_exists(route.bucket):
        raise _no_such_bucket()
    return web.Response(status=200, headers={"x-amz-bucket-region": "us-east-1"})


async def create_bucket(request: web.BaseRequest, route: S3Route,
                        ctx: Context) -> web.StreamResponse:
    body = await read_bounded(request, MAX_CREATE_BODY, S3Error(
        "MaxMessageLengthExceeded", "your request was too big"))
    if body.strip():
        s3_xml.parse(body)  # a LocationConstraint: any region is this one
    # Creating a bucket one already owns succeeds, as in us-east-1.
    await ctx.registry.objects.create_bucket(route.bucket)
    return web.Response(status=200, headers={"Location": f"/{route.bucket}"})


async def bucket_location(request: web.BaseRequest, route: S3Route,
                          ctx: Context) -> web.StreamResponse:
    if not await ctx.registry.objects.bucket_exists(route.bucket):
        raise _no_such_bucket()
    return _xml(s3_xml.Doc("LocationConstraint"))  # empty: us-east-1


def _max_keys(raw: str | None) -> int:
    if raw is None:
        return MAX_KEYS
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise S3Error("InvalidArgument", "max-keys must be a non-negative integer")
    return min(int(raw), MAX_KEYS)


async def list_objects_v2(request: web.BaseRequest, route: S3Route,
                          ctx: Context) -> web.StreamResponse:
    q = request.query
    if q.get("list-type") != "2":
        raise S3Error("InvalidArgument", "list-type must be 2")
    encoding = q.get("encoding-type")
    if encoding not in (None, "url"):
        raise S3Error("InvalidArgument", "invalid encoding-type (only url is supported)")
    url = encoding == "url"
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    start_after, token = q.get("start-after", ""), q.get("continuation-token")
    max_keys = _max_keys(q.get("max-keys"))
    page = await ctx.registry.objects.list(route.bucket, prefix, delimiter, max_keys,
                                          start_after, token)
    doc = s3_xml.Doc("ListBucketResult")
    doc.add(None, "Name", route.bucket)
    doc.add(None, "Prefix", s3_xml.encode_name(prefix, url))
    if delimiter:
        doc.add(None, "Delimiter", s3_xml.encode_name(delimiter, url))
    if start_after:
        doc.add(None, "StartAfter", s3_xml.encode_name(start_after, url))
    if token is not None:
        doc.add(None, "ContinuationToken", token)
    doc.add(None, "KeyCount", str(len(page.objects) + len(page.prefixes)))
    doc.add(None, "MaxKeys", str(max_keys))
    if url:
        doc.add(None, "EncodingType", "url")
    doc.add(None, "IsTruncated", "true" if page.truncated else "false")
    if page.next_token is not None:
        doc.add(None, "NextContinuationToken", page.next_token)
    for info in page.objects:
        c = doc.add(None, "Contents")
        doc.add(c, "Key", s3_xml.encode_name(info.key, url))
        doc.add(c, "LastModified", s3_xml.iso_date(info.modified))
        doc.add(c, "ETag", info.quoted_etag)
        doc.add(c, "Size", str(info.size))
        doc.add(c, "StorageClass", "STANDARD")
    for common in page.prefixes:
        doc.add(doc.add(None, "CommonPrefixes"), "Prefix", s3_xml.encode_name(common, url))
    return _xml(doc)


def _delete_request(body: bytes) -> tuple[list[str], bool]:
    root = s3_xml.parse(body)
    if s3_xml.local(root.tag) != "Delete":
        raise s3_xml.malformed()
    quiet = (s3_xml.text_of(root, "Quiet") or "").strip().lower() == "true"
    objects = s3_xml.children(root, "Object")
    if not objects or len(objects) > MAX_DELETE_KEYS:
        raise s3_xml.malformed(f"name between 1 and {MAX_DELETE_KEYS} objects")
    keys = []
    for obj in objects:
        key = s3_xml.text_of(obj, "Key")
        if key is None:
            raise s3_xml.malformed("every Object needs a Key")
        keys.append(key)
    return keys, quiet


async def delete_objects(request: web.BaseRequest, route: S3Route,
                         ctx: Context) -> web.StreamResponse:
    body = await read_bounded(request, MAX_DELETE_BODY, S3Error(
        "MaxMessageLengthExceeded", "your request was too big"))
    md5 = request.headers.get("Content-MD5")
    if md5 is not None and md5.strip() != base64.b64encode(
            hashlib.md5(body, usedforsecurity=False).digest()).decode():
        raise S3Error("BadDigest", "the Content-MD5 you specified did not match")
    keys, quiet = _delete_request(body)
    objects = ctx.registry.objects
    if not await objects.bucket_exists(route.bucket):
        raise _no_such_bucket()
    doc = s3_xml.Doc("DeleteResult")
    for key in keys:
        try:
            check_key(key)
            await objects.delete(route.bucket, key)
        except ObjectError as err:  # per key, as S3 reports them
            e = doc.add(None, "Error")
            doc.add(e, "Key", s3_xml.encode_name(key[:1024], url=False))
            doc.add(e, "Code", err.s3_code)
            doc.add(e, "Message", err.message)
            continue
        if not quiet:
            doc.add(doc.add(None, "Deleted"), "Key", s3_xml.encode_name(key, url=False))
    return _xml(doc)


def register(family: S3Family) -> None:
    """Every S3 operation this registry offers, on the family."""
    family.add("ListBuckets", list_buckets)
    family.add("HeadBucket", head_bucket)
    family.add("CreateBucket", create_bucket)
    family.add("GetBucketLocation", bucket_location)
    family.add("ListObjectsV2", list_objects_v2)
    family.add("DeleteObjects", delete_objects)
    family.add("HeadObject", s3_objects.get_object)
    family.add("GetObject", s3_objects.get_object)
    family.add("PutObject", s3_objects.put_object)
    family.add("DeleteObject", s3_objects.delete_object)
    family.add("CreateMultipartUpload", s3_objects.create_multipart)
    family.add("UploadPart", s3_objects.upload_part)
    family.add("CompleteMultipartUpload", s3_objects.complete_multipart)
    family.add("AbortMultipartUpload", s3_objects.abort_multipart)
    family.add("ListParts", s3_objects.list_parts)
