package kafkatest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden event files")

// CheckContract pins a producer's published event contract (a
// services/<name>/<name>events module) from both sides:
//
//   - each example, marshalled, equals golden/<type>.json (go test
//     -update rewrites them: review the diff, it is the wire format);
//     golden is the contract's testdata directory, since the test runs in
//     the producer's module and the contract module stays stdlib-only;
//   - the catalogue in docs (docs/events.md) lists for topic exactly the
//     types of examples, each with exactly the example's fields, nested
//     ones too (`items[{sku, quantity}]`, `payment{token, card_last4}`);
//   - the AsyncAPI document spec (api/asyncapi.yaml) puts exactly those
//     types on topic's channel, a send operation lists them all, and each
//     golden file validates against its message's payload schema.
//
// Text in parentheses in the catalogue is commentary, not fields.
func CheckContract(t *testing.T, docs, spec, golden, topic string, examples map[string]any) {
	t.Helper()
	api, err := LoadAsyncAPI(spec)
	if err != nil {
		t.Fatal(err)
	}
	rows := catalogue(t, docs, topic)
	var documented, exampled []string
	for typ := range rows {
		documented = append(documented, typ)
	}
	for typ := range examples {
		exampled = append(exampled, typ)
	}
	slices.Sort(documented)
	slices.Sort(exampled)
	if !slices.Equal(documented, exampled) {
		t.Errorf("%s: %s documents types %v, the contract has %v", topic, docs, documented, exampled)
	}
	if specified := api.Types(topic); !slices.Equal(specified, exampled) {
		t.Errorf("%s: %s puts types %v on the channel, the producer declares %v", topic, spec, specified, exampled)
	}
	if sent := api.Sent(topic); !slices.Equal(sent, exampled) {
		t.Errorf("%s: %s's send operations list %v, the producer declares %v", topic, spec, sent, exampled)
	}
	for typ, ex := range examples {
		got, err := json.MarshalIndent(ex, "", "  ")
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		got = append(got, '\n')
		file := filepath.Join(golden, typ+".json")
		if *update {
			if err := os.MkdirAll(golden, 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, got, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(file) // #nosec G304 -- a golden file of the contract's testdata
		if err != nil {
			t.Fatalf("%s: %v (go test -update writes it)", typ, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the wire format changed (go test -update, then review):\n got %s\nwant %s", typ, got, want)
		}
		var generic map[string]any
		if err := json.Unmarshal(got, &generic); err != nil {
			t.Fatal(err)
		}
		if err := api.Validate(typ, nil, want); err != nil {
			t.Errorf("%s: %s: %v", spec, file, err)
		}
		if doc, ok := rows[typ]; ok {
			if miss := compareFields(typ, doc, generic); miss != "" {
				t.Errorf("%s: %s", docs, miss)
			}
		}
	}
}

// field is a documented data field and, for objects and arrays of
// objects, the fields inside.
type field struct {
	name  string
	inner []field
}

var (
	rowRE     = regexp.MustCompile("^\\|\\s*(`[^`]*`)?\\s*\\|\\s*`([^`]+)`\\s*\\|[^|]*\\|(.*)\\|\\s*$")
	parenRE   = regexp.MustCompile(`\([^)]*\)`)
	backtickR = regexp.MustCompile("`([^`]+)`")
)

// catalogue reads the rows of topic from the markdown table of docs: type → fields.
func catalogue(t *testing.T, docs, topic string) map[string][]field {
	t.Helper()
	b, err := os.ReadFile(docs) // #nosec G304 -- the repository's docs
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]field{}
	current := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		m := rowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[1] != "" {
			current = strings.Trim(m[1], "`")
		}
		if current != topic {
			continue
		}
		var fs []field
		for _, tok := range backtickR.FindAllStringSubmatch(parenRE.ReplaceAllString(m[3], ""), -1) {
			fs = append(fs, parseField(tok[1]))
		}
		rows[m[2]] = fs
	}
	if len(rows) == 0 {
		t.Fatalf("%s has no catalogue rows for %s", docs, topic)
	}
	return rows
}

// parseField reads `name`, `name{a, b}` or `name[{a, b}]`.
func parseField(s string) field {
	i := strings.IndexAny(s, "[{")
	if i < 0 {
		return field{name: strings.TrimSpace(s)}
	}
	f := field{name: s[:i]}
	for n := range strings.SplitSeq(strings.Trim(s[i:], "[]{}"), ",") {
		f.inner = append(f.inner, field{name: strings.TrimSpace(n)})
	}
	return f
}

// compareFields says how the documented fields differ from the example's
// JSON object; "" when they match.
func compareFields(where string, doc []field, obj map[string]any) string {
	var docNames, keys []string
	for _, f := range doc {
		docNames = append(docNames, f.name)
	}
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(docNames)
	slices.Sort(keys)
	if !slices.Equal(docNames, keys) {
		return where + ": documented fields " + strings.Join(docNames, ",") + ", the contract has " + strings.Join(keys, ",")
	}
	for _, f := range doc {
		if f.inner == nil {
			continue
		}
		v := obj[f.name]
		if arr, ok := v.([]any); ok && len(arr) > 0 {
			v = arr[0]
		}
		inner, ok := v.(map[string]any)
		if !ok {
			return where + "." + f.name + ": documented as an object, the example has no object there"
		}
		if miss := compareFields(where+"."+f.name, f.inner, inner); miss != "" {
			return miss
		}
	}
	return ""
}
