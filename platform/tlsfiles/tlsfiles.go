// Package tlsfiles turns PEM files into TLS configurations: a server's
// certificate and key, and a client's trust in one private CA. The suite
// uses it between orders, payments and psp, where a network that can
// answer for psp's name must not read card numbers or fake charges (the
// compose stack and the Kubernetes overlays issue the certificates).
//
// To remove it: leave TLS_CERT_FILE, TLS_KEY_FILE and PSP_CA_FILE unset.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
)

// Server is the TLS configuration of a listener serving the certificate
// and key in certFile and keyFile (PEM): TLS 1.2 at least, HTTP/1.1 only
// (the suite speaks HTTP/1.1 between its processes). The pair is read
// again when the files change (cert-manager renews psp's certificate in
// place), so a renewal needs no restart; a pair that does not load keeps
// the one served before, and the first must load.
func Server(certFile, keyFile string) (*tls.Config, error) {
	r := &reloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	return &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.get() },
		MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}, nil
}

// reloader holds the pair last loaded and the files' state it came from.
type reloader struct {
	certFile, keyFile string

	mu    sync.Mutex
	cert  *tls.Certificate
	state string // modification times and sizes of both files
}

func (r *reloader) get() (*tls.Certificate, error) {
	state := fileState(r.certFile) + "|" + fileState(r.keyFile)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil && state == r.state {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil // half-written (the key not yet beside the new certificate): the old pair until both are there
		}
		return nil, fmt.Errorf("tls certificate %s: %w", r.certFile, err)
	}
	r.cert, r.state = &cert, state
	return r.cert, nil
}

func fileState(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	return fmt.Sprint(fi.ModTime().UnixNano(), "/", fi.Size())
}

// Client returns a transport like http.DefaultTransport that trusts only
// the CA certificates in caFile (PEM), not the system's: a peer must hold
// a certificate the suite's CA issued for the name it is called by.
func Client(caFile string) (*http.Transport, error) {
	pem, err := os.ReadFile(caFile) // #nosec G304 -- the operator names the file
	if err != nil {
		return nil, fmt.Errorf("tls ca %s: %w", caFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("tls ca " + caFile + ": no PEM certificate in it")
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// Transport is Client(caFile), or http.DefaultTransport when caFile is
// empty (plain HTTP, or the system's CAs for https).
func Transport(caFile string) (http.RoundTripper, error) {
	if caFile == "" {
		return http.DefaultTransport, nil
	}
	return Client(caFile)
}
