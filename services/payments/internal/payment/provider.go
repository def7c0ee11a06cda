package payment

import "errors"

// What a provider call can answer. A failed call is one of three things,
// and the use cases must tell them apart, because money hangs on it:
//
//   - the provider answered, and did nothing: a declined card
//     (*DeclinedError), a request it refused (ErrRefused);
//   - the request never left this process (ErrNotSent);
//   - anything else: a timeout, a reset connection, a 5xx or a 429. The
//     provider may have done it after the client gave up: its outcome is
//     unknown (Unknown) and is resolved by making the same call again
//     with the same idempotency key, never by assuming it failed.
//
// The provider's client (pspclient) answers in these terms.

// ErrRefused means the provider answered that it did nothing: a request
// it refused (4xx) or could not process (its processing_error).
var ErrRefused = errors.New("psp refused the request")

// ErrNotSent means no request of the call reached the provider.
var ErrNotSent = errors.New("psp not called")

// DeclinedError is the provider's refusal of a charge; Reason is its code
// (card_declined, insufficient_funds).
type DeclinedError struct{ Reason string }

func (e *DeclinedError) Error() string { return "charge declined: " + e.Reason }

// Unknown reports whether a failed call may have been carried out by the
// provider all the same: neither refused nor declined by it, and not
// stopped before it was sent.
func Unknown(err error) bool {
	var declined *DeclinedError
	return err != nil && !errors.As(err, &declined) && !errors.Is(err, ErrRefused) && !errors.Is(err, ErrNotSent)
}

// Charge is an approved charge.
type Charge struct {
	ChargeID string `json:"charge_id"`
}
