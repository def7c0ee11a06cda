package paymentevents_test

import (
	"testing"

	"github.com/example/sagasuite/platform/kafkatest"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

func TestContract(t *testing.T) {
	p := paymentevents.PaymentOutcome{OrderID: "0193a1b2-0000-7000-8000-000000000001",
		PaymentID: "0193a1b2-0000-7000-8000-0000000000aa", AmountCents: 2500}
	declined, failed := p, p
	declined.Reason, failed.Reason = paymentevents.ReasonCardDeclined, paymentevents.ReasonPaymentUnavailable
	kafkatest.CheckContract(t, "../../../docs/events.md", "../../../api/asyncapi.yaml", paymentevents.Topic, map[string]any{
		paymentevents.Authorized: p,
		paymentevents.Declined:   declined,
		paymentevents.Failed:     failed,
		paymentevents.Refunded:   p,
	})
}
