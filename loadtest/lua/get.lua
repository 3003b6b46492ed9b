-- A plain GET of the URL given on the command line (one fixed request).
wrk.method = "GET"
