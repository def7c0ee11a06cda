package httpserver

import (
	"unicode"
	"unicode/utf8"
)

// Text reports whether s is text of 1 to max characters that a service
// can store, search and log: valid UTF-8 without control characters
// (NUL, line breaks, escapes). Check every string a client controls in a
// path, query or header with it and answer 4xx when it fails: PostgreSQL
// refuses NUL and invalid UTF-8 in text with an error that would
// otherwise surface as a 500, and count against a dependency's breaker.
// (Strings decoded from a JSON body are valid UTF-8 already; they may
// still hold control characters.)
func Text(s string, max int) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
