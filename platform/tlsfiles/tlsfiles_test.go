package tlsfiles_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/example/sagasuite/platform/tlsfiles"
)

// files writes a CA's certificate and a server certificate for hosts.
func files(t *testing.T, hosts ...string) (ca, cert, key string) {
	t.Helper()
	authority, err := tlsfiles.NewCA("test ca")
	if err != nil {
		t.Fatal(err)
	}
	return issue(t, authority, hosts...)
}

// issue writes authority's certificate and one it issues for hosts.
func issue(t *testing.T, authority *tlsfiles.CA, hosts ...string) (ca, cert, key string) {
	t.Helper()
	dir := t.TempDir()
	c, k, err := authority.Issue(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for p, b := range map[string][]byte{ca: authority.PEM, cert: c, key: k} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

// A client trusting the suite's CA talks to a server holding a
// certificate it issued for the name called; it refuses a server whose
// certificate another CA issued (an impostor answering for the name),
// and one issued for another name.
func TestClientTrustsOnlyItsCAForTheNameCalled(t *testing.T) {
	authority, err := tlsfiles.NewCA("test ca")
	if err != nil {
		t.Fatal(err)
	}
	ca, cert, key := issue(t, authority, "127.0.0.1", "localhost")
	// Served as the suite serves it (a TLS listener with Server's
	// config), not with httptest's own certificate.
	serve := func(cert, key string) string {
		cfg, err := tlsfiles.Server(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
		ts.Listener = tls.NewListener(ts.Listener, cfg)
		ts.Start()
		t.Cleanup(ts.Close)
		return "https://" + ts.Listener.Addr().String()
	}
	tr, err := tlsfiles.Client(ca)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr}
	resp, err := client.Get(serve(cert, key))
	if err != nil {
		t.Fatalf("our own server: %v", err)
	}
	resp.Body.Close()

	_, otherCert, otherKey := files(t, "127.0.0.1", "localhost")
	if resp, err := client.Get(serve(otherCert, otherKey)); err == nil {
		resp.Body.Close()
		t.Fatal("a server with another CA's certificate was trusted")
	}
	_, wrongCert, wrongKey := issue(t, authority, "psp")
	if resp, err := client.Get(serve(wrongCert, wrongKey)); err == nil {
		resp.Body.Close()
		t.Fatal("a certificate for another name was trusted")
	}
	if _, err := tlsfiles.Client(key); err == nil {
		t.Fatal("a key file was taken for a CA certificate")
	}
}

// A certificate renewed in place (cert-manager rewrites the Secret's
// files) is served from the next handshake on, without a restart.
func TestARenewedCertificateIsServedWithoutARestart(t *testing.T) {
	authority, err := tlsfiles.NewCA("test ca")
	if err != nil {
		t.Fatal(err)
	}
	_, cert, key := issue(t, authority, "127.0.0.1")
	cfg, err := tlsfiles.Server(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.String()
	}
	first := serial()
	_, newCert, newKey := issue(t, authority, "127.0.0.1")
	for from, to := range map[string]string{newCert: cert, newKey: key} {
		b, _ := os.ReadFile(from)
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if second := serial(); second == first {
		t.Fatal("the renewed certificate is not served")
	}
}
