package payments_test

import (
	"testing"

	"github.com/example/sagasuite/platform/kafkatest"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

// The contract payments publishes (paymentevents, a module of its own that
// consumers require): the golden payloads in paymentevents/testdata, the type
// table in docs/events.md and the channel in api/asyncapi.yaml must agree.
// It runs here, in the producer's module, so that paymentevents needs nothing
// but the standard library.
func TestContract(t *testing.T) {
	p := paymentevents.PaymentOutcome{OrderID: "0193a1b2-0000-7000-8000-000000000001",
		PaymentID: "0193a1b2-0000-7000-8000-0000000000aa", AmountCents: 2500}
	declined, failed := p, p
	declined.Reason, failed.Reason = paymentevents.ReasonCardDeclined, paymentevents.ReasonPaymentUnavailable
	kafkatest.CheckContract(t, "../../docs/events.md", "../../api/asyncapi.yaml", "paymentevents/testdata", paymentevents.Topic, map[string]any{
		paymentevents.Authorized: p,
		paymentevents.Declined:   declined,
		paymentevents.Failed:     failed,
		paymentevents.Refunded:   p,
	})
}
