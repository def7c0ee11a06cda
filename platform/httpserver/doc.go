// Package httpserver is the HTTP edge every service shares: an echo router
// with the suite's JSON error shape, a request body limit, strict JSON
// decoding, server spans and metrics named by route, the /healthz, /readyz
// and /metrics endpoints, and a Run that shuts down gracefully.
//
// Services add their routes to [Server.Echo] in one routes.go and return
// [*Error] values (or plain errors, which become 500s) from handlers; this
// package is the one place where errors turn into status codes.
package httpserver
