package e2e

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/paths"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// contract checks every HTTP exchange the e2e suite has with a suite
// process against api/openapi.yaml, the one description of the suite's
// HTTP APIs: a request the spec allows must get an answer the spec
// describes (status, headers, body: every field, since the schemas allow
// no others); a request the spec forbids (the hostile tests send many on
// purpose) must be refused with a 4xx in the one error shape. It wraps
// http.DefaultTransport, which every test's calls go through, and
// TestMain fails the run when anything drifted.
type contract struct {
	next     http.RoundTripper
	api      validator.Validator
	model    *v3.Document
	errShape *base.Schema
	schemas  schema_validation.SchemaValidator
	hosts    map[string]bool // the suite's processes; others pass unchecked

	mu         sync.Mutex
	violations map[string]*violation // by operation, status and problem
	exercised  map[string]bool       // "GET /orders/{order_id} 200"
}

func newContract(path string, next http.RoundTripper, hosts map[string]bool) (*contract, error) {
	spec, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %v", path, errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("%s is not a valid OpenAPI document: %s", path, describe(verrs))
	}
	shape := model.Model.Components.Schemas.GetOrZero("Error")
	if shape == nil {
		return nil, fmt.Errorf("%s: no components.schemas.Error", path)
	}
	return &contract{next: next, api: v, model: &model.Model, errShape: shape.Schema(), schemas: schema_validation.NewSchemaValidator(),
		hosts: hosts, violations: map[string]*violation{}, exercised: map[string]bool{}}, nil
}

func (c *contract) RoundTrip(req *http.Request) (*http.Response, error) {
	if !c.hosts[req.URL.Host] {
		return c.next.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	got, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(got))
	c.check(req, body, resp, got)
	return resp, nil
}

// check validates one exchange and records what does not follow the spec.
func (c *contract) check(req *http.Request, body []byte, resp *http.Response, got []byte) {
	if strings.HasPrefix(req.URL.Path, "/admin/debug/pprof") {
		return // Go's own handlers: documented loosely on purpose
	}
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	reqOK, reqErrs := c.api.ValidateHttpRequestSync(r)
	r = req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	rs := *resp
	rs.Body = io.NopCloser(bytes.NewReader(got))
	respOK, respErrs := c.api.ValidateHttpResponse(r, &rs)

	where := fmt.Sprintf("%s %s → %d", req.Method, req.URL.RequestURI(), resp.StatusCode)
	var problems []string
	switch {
	case missing(reqErrs) || missing(respErrs):
		// No such route or method in the spec: only a refusal in the error shape may answer.
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			problems = append(problems, "the route is not in api/openapi.yaml, and the server served it")
		} else if ok, errs := c.schemas.ValidateSchemaBytes(c.errShape, got); !ok {
			problems = append(problems, "the refusal is not an Error: "+describe(errs))
		}
	default:
		if !reqOK && resp.StatusCode < 400 {
			problems = append(problems, "the spec forbids this request ("+describe(reqErrs)+") and the server accepted it")
		}
		if !respOK {
			problems = append(problems, "the answer is not what the spec says: "+describe(respErrs))
		}
		c.mu.Lock()
		c.exercised[req.Method+" "+c.template(req)+" "+fmt.Sprint(resp.StatusCode)] = true
		c.mu.Unlock()
	}
	if len(problems) > 0 {
		// The validator names the request's path: one kind of problem on
		// many orders is one entry.
		problem := strings.ReplaceAll(strings.Join(problems, "; "), req.URL.Path, c.template(req))
		key := req.Method + " " + c.template(req) + " " + fmt.Sprint(resp.StatusCode) + " " + problem
		c.mu.Lock()
		if v := c.violations[key]; v != nil {
			v.times++
		} else {
			c.violations[key] = &violation{example: where + ": " + problem + "\n    body: " + truncate(string(got), 300), times: 1}
		}
		c.mu.Unlock()
	}
}

func missing(errs []*liberrors.ValidationError) bool {
	return slices.ContainsFunc(errs, func(e *liberrors.ValidationError) bool {
		return e.IsPathMissingError() || e.IsOperationMissingError()
	})
}

// template is the spec's path for req: /orders/{order_id}.
func (c *contract) template(req *http.Request) string {
	if _, _, path := paths.FindPath(req, c.model, config.NewValidationOptions()); path != "" {
		return path
	}
	return req.URL.Path
}

func describe(errs []*liberrors.ValidationError) string {
	var out []string
	for _, e := range errs {
		s := e.Message
		if e.Reason != "" {
			s += ": " + e.Reason
		}
		for _, f := range e.SchemaValidationErrors {
			s += fmt.Sprintf(" [%s: %s]", f.FieldPath, f.Reason)
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// violation is one way an exchange broke the spec, and how often.
type violation struct {
	example string
	times   int
}

// report is what TestMain prints after the run: every exchange that did
// not follow the spec. It returns whether there was any.
func (c *contract) report(w io.Writer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var unexercised []string
	for path, item := range c.model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			m := strings.ToUpper(method)
			if !slices.ContainsFunc(slices.Collect(maps.Keys(c.exercised)), func(k string) bool { return strings.HasPrefix(k, m+" "+path+" ") }) {
				unexercised = append(unexercised, m+" "+path)
			}
		}
	}
	slices.Sort(unexercised)
	fmt.Fprintf(w, "e2e: %d operation/status pairs of api/openapi.yaml exercised; operations no test called: %v\n", len(c.exercised), unexercised)
	if len(c.violations) == 0 {
		fmt.Fprintln(w, "e2e: every exchange followed api/openapi.yaml")
		return false
	}
	fmt.Fprintf(w, "e2e: %d kinds of exchange did not follow api/openapi.yaml:\n", len(c.violations))
	for _, k := range slices.Sorted(maps.Keys(c.violations)) {
		v := c.violations[k]
		fmt.Fprintf(w, "  %s\n    (%d times)\n", v.example, v.times)
	}
	return true
}

// The operations other tests have no reason to call (the services call
// psp and inventory's catalogue themselves, outside this suite's
// transport), called once each so their answers are checked against the
// spec too.
func TestOperationsNoOtherTestCalls(t *testing.T) {
	auth := map[string]string{"Authorization": "Bearer " + adminToken}
	cases := []struct {
		method, url string
		body        string
		header      map[string]string
		want        int
	}{
		{http.MethodGet, suite.urls["inventory-1"] + "/products?sku=SKU-0001&sku=SKU-0002&sku=NOPE", "", nil, http.StatusOK},
		{http.MethodGet, suite.urls["inventory-2"] + "/products", "", nil, http.StatusOK},
		{http.MethodGet, suite.urls["orders"] + "/healthz", "", nil, http.StatusOK},
		{http.MethodGet, suite.urls["payments"] + "/admin/faults", "", auth, http.StatusOK},
		{http.MethodGet, suite.urls["payments"] + "/admin/consumption", "", auth, http.StatusOK},
		{http.MethodGet, suite.urls["psp"] + "/card-encryption-key", "", nil, http.StatusOK},
		{http.MethodGet, suite.urls["psp"] + "/admin/provider-faults", "", auth, http.StatusOK},
		{http.MethodPut, suite.urls["psp"] + "/admin/provider-faults", `{"after_charge":"","late_ms":0,"rate":0}`, auth, http.StatusOK},
		{http.MethodPut, suite.urls["psp"] + "/admin/provider-faults", `{"after_charge":"sometimes"}`, auth, http.StatusBadRequest},
		{http.MethodPost, suite.urls["psp"] + "/charges", `{"token":"not-sealed","amount_cents":100}`, map[string]string{"Idempotency-Key": "e2e-spec-charge"}, http.StatusBadRequest},
		{http.MethodPost, suite.urls["psp"] + "/refunds", `{"charge_id":"ch_nope"}`, map[string]string{"Idempotency-Key": "e2e-spec-refund"}, http.StatusNotFound},
		{http.MethodPost, suite.urls["psp"] + "/admin/card-encryption-key/rotate", "", auth, http.StatusOK},
	}
	for _, c := range cases {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		status, got, err := call(c.method, c.url, body, c.header)
		if err != nil || status != c.want {
			t.Errorf("%s %s: %d %s %v, want %d", c.method, c.url, status, got, err, c.want)
		}
	}
}

// Every error code the code can answer with is one api/openapi.yaml's
// ErrorCode lists, and the spec lists none the code never uses: a code
// added to a handler without the spec (or left in the spec after its
// handler went) fails here, even before a test provokes it.
func TestEveryErrorCodeIsInTheSpec(t *testing.T) {
	spec, err := os.ReadFile("../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatal(err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	specCodes := map[string]bool{}
	for _, n := range model.Model.Components.Schemas.GetOrZero("ErrorCode").Schema().Enum {
		specCodes[n.Value] = true
	}
	// NewError(status, "code", …), Error{…, Code: "code"}, psp's failure(status, "code", …),
	// and the fallback codes the server's error handler picks.
	uses := regexp.MustCompile(`(?:NewError\(|failure\()[^,]+,\s*"([a-z_]+)"|Code:\s*"([a-z_]+)"|code := "([a-z_]+)"|code = "([a-z_]+)"`)
	codeCodes := map[string]string{}
	for _, dir := range []string{"../platform", "../services"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "/template/") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range uses.FindAllStringSubmatch(string(b), -1) {
				for _, code := range m[1:] {
					if code != "" {
						codeCodes[code] = path
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for code, path := range codeCodes {
		if !specCodes[code] {
			t.Errorf("%s answers with error code %q, which api/openapi.yaml's ErrorCode does not list", path, code)
		}
	}
	for code := range specCodes {
		if _, ok := codeCodes[code]; !ok {
			t.Errorf("api/openapi.yaml lists error code %q, which no handler answers with", code)
		}
	}
	if len(codeCodes) < 20 {
		t.Errorf("found only %d error codes in the code: the pattern no longer matches how handlers make errors", len(codeCodes))
	}
}
