package kafkatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// AsyncAPI is api/asyncapi.yaml as the tests read it: which message types
// each topic carries, who sends them, and the schemas of their headers and
// data. Producers' golden files (CheckContract) and the messages the e2e
// suite reads off the broker are checked against it, so the document
// cannot drift from what is on the wire.
type AsyncAPI struct {
	path     string
	doc      asyncDoc
	compiler *jsonschema.Compiler
	// messages by ce_type: the component key of each message.
	byType map[string]string
}

type asyncRef struct {
	Ref string `json:"$ref"`
}

type asyncDoc struct {
	Channels map[string]struct {
		Address  string              `json:"address"`
		Messages map[string]asyncRef `json:"messages"`
	} `json:"channels"`
	Operations map[string]struct {
		Action   string     `json:"action"`
		Channel  asyncRef   `json:"channel"`
		Messages []asyncRef `json:"messages"`
	} `json:"operations"`
	Components struct {
		Messages map[string]struct {
			Name    string   `json:"name"`
			Payload asyncRef `json:"payload"`
			Headers asyncRef `json:"headers"`
		} `json:"messages"`
	} `json:"components"`
}

// LoadAsyncAPI reads an AsyncAPI 3 document (YAML or JSON).
func LoadAsyncAPI(path string) (*AsyncAPI, error) {
	raw, err := os.ReadFile(path) // #nosec G304 -- the repository's own spec file
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	a := &AsyncAPI{path: path, byType: map[string]string{}}
	if err := json.Unmarshal(js, &a.doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	whole, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return nil, err
	}
	a.compiler = jsonschema.NewCompiler()
	a.compiler.DefaultDraft(jsonschema.Draft7) // AsyncAPI's schema format is a superset of draft 7
	a.compiler.AssertFormat()
	if err := a.compiler.AddResource("asyncapi.json", whole); err != nil {
		return nil, err
	}
	for key, m := range a.doc.Components.Messages {
		a.byType[m.Name] = key
	}
	return a, nil
}

// component is the key of the message a channel's or operation's
// reference names: "#/components/messages/ordersPlaced", or a channel's
// own message "#/channels/x/messages/ordersPlaced" (which refers there).
func (a *AsyncAPI) component(ref string) string {
	switch {
	case strings.HasPrefix(ref, "#/components/messages/"):
		return strings.TrimPrefix(ref, "#/components/messages/")
	case strings.HasPrefix(ref, "#/channels/"):
		parts := strings.Split(strings.TrimPrefix(ref, "#/channels/"), "/")
		if len(parts) == 3 && parts[1] == "messages" {
			return a.component(a.doc.Channels[parts[0]].Messages[parts[2]].Ref)
		}
	}
	return ""
}

func (a *AsyncAPI) channel(topic string) (string, bool) {
	for key, c := range a.doc.Channels {
		if c.Address == topic {
			return key, true
		}
	}
	return "", false
}

// Types is every message type (ce_type) the document puts on topic.
func (a *AsyncAPI) Types(topic string) []string {
	key, ok := a.channel(topic)
	if !ok {
		return nil
	}
	var out []string
	for _, ref := range a.doc.Channels[key].Messages {
		out = append(out, a.doc.Components.Messages[a.component(ref.Ref)].Name)
	}
	slices.Sort(out)
	return out
}

// Sent is every type a send operation on topic lists.
func (a *AsyncAPI) Sent(topic string) []string {
	key, _ := a.channel(topic)
	var out []string
	for _, op := range a.doc.Operations {
		if op.Action != "send" || op.Channel.Ref != "#/channels/"+key {
			continue
		}
		for _, ref := range op.Messages {
			out = append(out, a.doc.Components.Messages[a.component(ref.Ref)].Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Validate checks an event of type typ: its data against the message's
// payload schema and, when headers is not nil, its Kafka headers against
// the message's headers schema.
func (a *AsyncAPI) Validate(typ string, headers map[string]string, data []byte) error {
	key, ok := a.byType[typ]
	if !ok {
		return fmt.Errorf("%s has no message named %q", a.path, typ)
	}
	if err := a.validate("#/components/messages/"+key+"/payload", data); err != nil {
		return fmt.Errorf("%s data: %w", typ, err)
	}
	if headers != nil {
		b, err := json.Marshal(headers)
		if err != nil {
			return err
		}
		if err := a.validate("#/components/messages/"+key+"/headers", b); err != nil {
			return fmt.Errorf("%s headers: %w", typ, err)
		}
	}
	return nil
}

func (a *AsyncAPI) validate(pointer string, doc []byte) error {
	schema, err := a.compiler.Compile("asyncapi.json" + pointer)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return schema.Validate(v)
}
