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

// collectorFactories are the components the contrib image runs that the
// configuration uses.
func collectorFactories(t *testing.T) otelcol.Factories {
	t.Helper()
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
	return f
}

// validateCollector checks deploy/collector/otel-collector.yaml with the
// Collector's own configuration code, in the environment a deployment
// gives the Collector: unknown keys, bad endpoints, pipelines naming
// components that are not configured, variables left unset.
func validateCollector(t *testing.T, where string, env map[string]string) {
	t.Helper()
	for _, v := range []string{"TEMPO_OTLP_ENDPOINT", "LOKI_OTLP_ENDPOINT", "PROMETHEUS_OTLP_ENDPOINT"} {
		if env[v] == "" {
			t.Errorf("%s gives the Collector no %s", where, v)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := otelcoltest.LoadConfigAndValidate("collector/otel-collector.yaml", collectorFactories(t))
	if err != nil {
		t.Fatalf("deploy/collector/otel-collector.yaml with %s's environment: %v", where, err)
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

func TestCollectorConfigIsValidInCompose(t *testing.T) {
	env := map[string]string{}
	for k, v := range loadCompose(t).Services["otel-collector"].Environment {
		if v != nil {
			env[k] = *v
		}
	}
	validateCollector(t, "compose.yaml", env)
}
