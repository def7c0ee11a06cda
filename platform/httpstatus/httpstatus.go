// Package httpstatus is the one rule every HTTP client of the suite
// applies to an answer it did not want: is it the dependency's failure
// (retry it, count it against the dependency's circuit breaker) or the
// caller's (give up, count nothing)? orders' inventory client and
// payments' provider client both ask it, so a 4xx never opens a breaker
// anywhere: one client's bad input cannot stop everyone's calls.
package httpstatus

import "net/http"

// Transient reports whether status says the dependency could not answer
// now, and the same request may succeed later: it failed (5xx), is
// overloaded (429), timed the request out (408), is still busy with a
// concurrent request with the same idempotency key (409), or asks for the
// request again later (425). Any other 4xx is the caller's fault: retrying
// repeats it. 2xx and 3xx are answers, not failures.
func Transient(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}
