// paymentevents is the orders saga's contract for payments.events: the event types
// payments produces and their payloads. It is a module of its own with no
// requirements beyond the standard library, so a consumer requires exactly
// this contract and not the service behind it.
module github.com/example/sagasuite/services/payments/paymentevents

go 1.26.0
