package order

import (
	"fmt"
	"regexp"
	"slices"
	"unicode"
	"unicode/utf8"
)

var (
	customerPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	cardPattern     = regexp.MustCompile(`^[0-9]{12,19}$`)
)

// Line is a requested item before pricing.
type Line struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// ValidCustomerID reports whether id is a customer id as the contract
// has them.
func ValidCustomerID(id string) bool { return customerPattern.MatchString(id) }

// text reports whether s is 1 to max characters of valid UTF-8 without
// control characters: what can be stored, searched and logged as it is
// (PostgreSQL refuses NUL in text).
func text(s string, max int, allow ...rune) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !slices.Contains(allow, r) {
			return false
		}
	}
	return true
}

// ValidatePlace checks a new order against the contract's rules and
// returns every problem by field, empty when it is valid. Messages never
// echo the card number.
func ValidatePlace(customerID string, lines []Line, cardNumber string) map[string]string {
	bad := map[string]string{}
	if !customerPattern.MatchString(customerID) {
		bad["customer_id"] = "1 to 64 characters of A-Z, a-z, 0-9, _ and -"
	}
	switch {
	case len(lines) == 0:
		bad["items"] = "at least one item"
	case len(lines) > 50:
		bad["items"] = "at most 50 items"
	}
	seen := map[string]bool{}
	for i, l := range lines {
		switch {
		case !text(l.SKU, 64):
			bad[fmt.Sprintf("items[%d].sku", i)] = "required, 1 to 64 characters without control characters"
		case seen[l.SKU]:
			bad[fmt.Sprintf("items[%d].sku", i)] = "duplicate SKU: each SKU once, with its total quantity"
		}
		seen[l.SKU] = true
		if l.Quantity < 1 || l.Quantity > 1000 {
			bad[fmt.Sprintf("items[%d].quantity", i)] = "1 to 1000"
		}
	}
	if !cardPattern.MatchString(cardNumber) {
		bad["payment.card_number"] = "12 to 19 digits"
	}
	return bad
}

var authorPattern = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)

// ValidateNote checks a note and its author.
func ValidateNote(note, author string) map[string]string {
	bad := map[string]string{}
	if !text(note, 1000, '\n', '\t') {
		bad["text"] = "1 to 1000 characters; no control characters but line breaks and tabs"
	}
	if !authorPattern.MatchString(author) {
		bad["author"] = "1 to 64 characters of A-Z, a-z, 0-9, _ . @ and -"
	}
	return bad
}
