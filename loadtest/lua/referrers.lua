-- GET the referrers index of a manifest (OCI 1.1 referrers API).
wrk.method = "GET"
wrk.headers["Accept"] = "application/vnd.oci.image.index.v1+json"
