-- HEAD a manifest by digest. (Debian's wrk 4.1 waits for a body after HEAD, so the
-- harness probes wrk first and falls back to loadtest/headload.py when it hangs.)
wrk.method = "HEAD"
wrk.headers["Accept"] = "application/vnd.oci.image.manifest.v1+json, " ..
  "application/vnd.oci.image.index.v1+json, " ..
  "application/vnd.docker.distribution.manifest.v2+json, " ..
  "application/vnd.docker.distribution.manifest.list.v2+json"
