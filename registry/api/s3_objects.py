"""S3 object handlers: HEAD/GET (rendering core's plan), PUT, DELETE and multipart.

Handlers only parse the request, call `ctx.registry.objects` and write S3's
answer; errors (core's ObjectError with its S3 code, or any domain error) are
rendered as S3 XML by the family (api/s3.py).
"""

from __future__ import annotations

from aiohttp import web

from registry.api import s3_xml
from registry.api.blobs import send_plan
from registry.api.common import Context, caller_of, read_bounded
from registry.api.s3 import S3Error, S3Route
from registry.api.s3_body import content_type, write_body
from registry.core.types import ObjectInfo, ObjectPlan

# CompleteMultipartUpload lists up to 10,000 parts of ~100-300 bytes each.
MAX_COMPLETE_BODY = 4 << 20
XML = {"Content-Type": "application/xml"}


def _object_headers(info: ObjectInfo) -> dict[str, str]:
    return {"ETag": info.quoted_etag, "Last-Modified": s3_xml.http_date(info.modified),
            "Accept-Ranges": "bytes", "Content-Type": info.content_type}


def _xml(doc: s3_xml.Doc, status: int = 200) -> web.Response:
    return web.Response(status=status, body=doc.bytes(), headers=XML)


def _refuse_copy(request: web.BaseRequest) -> None:
    # A copy names its source in a header and has no body: storing the empty
    # body as the object would be silent data loss, so say it is not offered.
    if "x-amz-copy-source" in request.headers:
        raise S3Error("NotImplemented", "copying objects is not implemented", 501)


async def get_object(request: web.BaseRequest, route: S3Route,
                     ctx: Context) -> web.StreamResponse:
    """GetObject and HeadObject: Range (206/416), If-Match (412), If-None-Match (304)."""
    plan = await ctx.registry.objects.serve(
        route.bucket, route.key, request.headers.get("Range"),
        with_body=request.method == "GET", if_match=request.headers.get("If-Match"),
        if_none_match=request.headers.get("If-None-Match"))
    try:
        return await render(request, plan)
    finally:
        await plan.close()


async def render(request: web.BaseRequest, plan: ObjectPlan) -> web.StreamResponse:
    headers = _object_headers(plan.info)
    if plan.not_modified:
        del headers["Content-Type"]
        return web.Response(status=304, headers=headers)
    return await send_plan(request, plan, headers)


async def put_object(request: web.BaseRequest, route: S3Route,
                     ctx: Context) -> web.StreamResponse:
    _refuse_copy(request)
    chunks, checks = write_body(request)
    info = await ctx.registry.objects.put(route.bucket, route.key, chunks, checks,
                                          content_type(request), caller_of(request, ctx))
    return web.Response(status=200, headers={"ETag": info.quoted_etag})


async def delete_object(request: web.BaseRequest, route: S3Route,
                        ctx: Context) -> web.StreamResponse:
    # 204 whether or not the key existed, as S3 answers.
    await ctx.registry.objects.delete(route.bucket, route.key)
    return web.Response(status=204)


# -- multipart ---------------------------------------------------------------

async def create_multipart(request: web.BaseRequest, route: S3Route,
                           ctx: Context) -> web.StreamResponse:
    upload_id = await ctx.registry.objects.create_multipart(route.bucket, route.key,
                                                            content_type(request))
    doc = s3_xml.Doc("InitiateMultipartUploadResult")
    doc.add(None, "Bucket", route.bucket)
    doc.add(None, "Key", s3_xml.encode_name(route.key, url=False))
    doc.add(None, "UploadId", upload_id)
    return _xml(doc)


async def upload_part(request: web.BaseRequest, route: S3Route,
                      ctx: Context) -> web.StreamResponse:
    _refuse_copy(request)
    chunks, checks = write_body(request)
    etag = await ctx.registry.objects.upload_part(
        route.bucket, route.key, request.query["uploadId"], int(request.query["partNumber"]),
        chunks, checks)
    return web.Response(status=200, headers={"ETag": f'"{etag}"'})


def _parts_of(body: bytes) -> list[tuple[int, str]]:
    root = s3_xml.parse(body)
    if s3_xml.local(root.tag) != "CompleteMultipartUpload":
        raise s3_xml.malformed()
    parts = []
    for part in s3_xml.children(root, "Part"):
        number, etag = s3_xml.text_of(part, "PartNumber"), s3_xml.text_of(part, "ETag")
        if number is None or etag is None:
            raise s3_xml.malformed("every Part needs a PartNumber and an ETag")
        number = number.strip()
        if not (number.isascii() and number.isdigit() and len(number) <= 6):
            raise s3_xml.malformed("invalid PartNumber")
        parts.append((int(number), etag[:200]))
    return parts


async def complete_multipart(request: web.BaseRequest, route: S3Route,
                             ctx: Context) -> web.StreamResponse:
    body = await read_bounded(request, MAX_COMPLETE_BODY, S3Error(
        "MaxMessageLengthExceeded", "your request was too big"))
    parts = _parts_of(body)
    info = await ctx.registry.objects.complete_multipart(
        route.bucket, route.key, request.query["uploadId"], parts, caller_of(request, ctx))
    doc = s3_xml.Doc("CompleteMultipartUploadResult")
    doc.add(None, "Location", f"{request.scheme}://{request.host}/s3/{route.bucket}/"
            + s3_xml.encode_name(route.key, url=True))
    doc.add(None, "Bucket", route.bucket)
    doc.add(None, "Key", s3_xml.encode_name(route.key, url=False))
    doc.add(None, "ETag", info.quoted_etag)
    return _xml(doc)


async def abort_multipart(request: web.BaseRequest, route: S3Route,
                          ctx: Context) -> web.StreamResponse:
    await ctx.registry.objects.abort_multipart(route.bucket, route.key,
                                               request.query["uploadId"])
    return web.Response(status=204)


async def list_parts(request: web.BaseRequest, route: S3Route,
                     ctx: Context) -> web.StreamResponse:
    upload_id = request.query["uploadId"]
    parts = await ctx.registry.objects.list_parts(route.bucket, route.key, upload_id)
    doc = s3_xml.Doc("ListPartsResult")
    doc.add(None, "Bucket", route.bucket)
    doc.add(None, "Key", s3_xml.encode_name(route.key, url=False))
    doc.add(None, "UploadId", upload_id)
    doc.add(None, "PartNumberMarker", "0")
    doc.add(None, "MaxParts", str(max(1000, len(parts))))
    doc.add(None, "IsTruncated", "false")
    for p in parts:
        e = doc.add(None, "Part")
        doc.add(e, "PartNumber", str(p.number))
        doc.add(e, "LastModified", s3_xml.iso_date(p.modified))
        doc.add(e, "ETag", f'"{p.etag}"')
        doc.add(e, "Size", str(p.size))
    return _xml(doc)
