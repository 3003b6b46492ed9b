-- GET a manifest by tag, accepting every OCI and Docker manifest type.
wrk.method = "GET"
wrk.headers["Accept"] = "application/vnd.oci.image.manifest.v1+json, " ..
  "application/vnd.oci.image.index.v1+json, " ..
  "application/vnd.docker.distribution.manifest.v2+json, " ..
  "application/vnd.docker.distribution.manifest.list.v2+json"

-- args (optional): a token, sent as `Authorization: Bearer` on every request.
function init(args)
  if args[1] then wrk.headers["Authorization"] = "Bearer " .. args[1] end
end
