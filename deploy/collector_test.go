package deploy

import (
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/otelcol/otelcoltest"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
)

// The compose stack's Collector configuration, validated by the
// Collector's own configuration code with the components the contrib
// image runs: unknown keys, bad endpoints, pipelines naming components
// that are not configured.
func TestCollectorConfigIsValid(t *testing.T) {
	var f otelcol.Factories
	var err error
	if f.Receivers, err = otelcol.MakeFactoryMap(otlpreceiver.NewFactory()); err != nil {
		t.Fatal(err)
	}
	if f.Processors, err = otelcol.MakeFactoryMap(batchprocessor.NewFactory(), memorylimiterprocessor.NewFactory()); err != nil {
		t.Fatal(err)
	}
	if f.Exporters, err = otelcol.MakeFactoryMap(otlpexporter.NewFactory(), otlphttpexporter.NewFactory()); err != nil {
		t.Fatal(err)
	}
	if f.Extensions, err = otelcol.MakeFactoryMap(healthcheckextension.NewFactory()); err != nil {
		t.Fatal(err)
	}
	cfg, err := otelcoltest.LoadConfigAndValidate("compose/otel-collector.yaml", f)
	if err != nil {
		t.Fatalf("deploy/compose/otel-collector.yaml: %v", err)
	}
	for _, signal := range []string{"traces", "logs", "metrics"} {
		found := false
		for id := range cfg.Service.Pipelines {
			found = found || id.Signal().String() == signal
		}
		if !found {
			t.Errorf("no %s pipeline: the services send %s over OTLP", signal, signal)
		}
	}
}
