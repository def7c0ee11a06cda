package deploy

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// endpoint is a set of pods (or, external, an address outside the
// cluster) as a NetworkPolicy sees them.
type endpoint struct {
	name      string
	namespace string
	labels    map[string]string
	ports     map[string]int32 // named container ports
	external  bool
}

// edge is one connection a process is configured to make.
type edge struct {
	from, to endpoint
	port     int32
	why      string
}

// The network policies admit exactly the connections the suite makes.
// The edges are derived from each Deployment's configuration: every URL
// or host:port in its containers' environment (their own env and the
// ConfigMaps they read) is resolved through the overlay's Services to
// the pods behind it, plus the one connection made through discovery
// (orders calls the inventory instances it finds in etcd). Then every
// edge must be admitted by the caller's egress and the target's ingress
// policies, and every other connection between the suite's processes,
// and any connection from a stranger pod, must be refused.
func TestK8sNetworkPolicies(t *testing.T) {
	for _, overlay := range overlays {
		r := render(t, overlay)
		m := newPolicyModel(r)
		edges := m.edges(t)
		if len(edges) < 15 {
			t.Fatalf("%s: only %d edges derived: is the environment being read?", overlay, len(edges))
		}
		suite := []string{"orders", "payments", "inventory", "psp"}
		made := map[[2]string]bool{}
		for _, e := range edges {
			made[[2]string{e.from.name, e.to.name}] = true
			if !m.egress(e.from, e.to, e.port, corev1.ProtocolTCP) {
				t.Errorf("%s: %s may not call %s:%d (%s): no egress rule admits it", overlay, e.from.name, e.to.name, e.port, e.why)
			}
			if !m.ingress(e.from, e.to, e.port) {
				t.Errorf("%s: %s may not call %s:%d (%s): no ingress rule of %s admits it", overlay, e.from.name, e.to.name, e.port, e.why, e.to.name)
			}
		}
		for _, from := range suite {
			f := m.workload(from)
			// Every process is held to its edges, and resolves names.
			if !m.isolated(f, networkingv1.PolicyTypeEgress) {
				t.Errorf("%s: %s's egress is not restricted", overlay, from)
			}
			dns := endpoint{name: "kube-dns", namespace: "kube-system", labels: map[string]string{"k8s-app": "kube-dns"}}
			if !m.egress(f, dns, 53, corev1.ProtocolUDP) {
				t.Errorf("%s: %s cannot resolve names (kube-dns, UDP 53)", overlay, from)
			}
			for _, to := range suite {
				target := m.workload(to)
				port := contractPorts[to]
				if from == to || made[[2]string{from, to}] || to == "orders" || to == "payments" {
					continue // orders' and payments' APIs are public
				}
				if m.egress(f, target, port, corev1.ProtocolTCP) && m.ingress(f, target, port) {
					t.Errorf("%s: %s may call %s:%d, which it never does", overlay, from, to, port)
				}
			}
		}
		// A pod of no one's (a compromised or stray workload in the
		// namespace) reaches only the public APIs.
		stranger := endpoint{name: "stranger", namespace: "sagasuite", labels: map[string]string{"app.kubernetes.io/name": "debug"}}
		reported := map[string]bool{}
		for _, e := range edges {
			key := e.to.name + ":" + strconv.Itoa(int(e.port))
			if e.to.external || e.to.namespace != "sagasuite" || reported[key] {
				continue
			}
			if reported[key] = m.ingress(stranger, e.to, e.port); reported[key] {
				t.Errorf("%s: any pod may reach %s:%d", overlay, e.to.name, e.port)
			}
		}
		for _, public := range []string{"orders", "payments"} {
			if !m.ingress(stranger, m.workload(public), contractPorts[public]) {
				t.Errorf("%s: %s's public API is not reachable", overlay, public)
			}
		}
		// Prometheus, from its own namespace, scrapes every metrics port.
		prom := endpoint{name: "prometheus", namespace: "monitoring", labels: map[string]string{"app.kubernetes.io/name": "prometheus"}}
		for _, name := range suite {
			w := m.workload(name)
			for pname, port := range w.ports {
				if (pname == "http" || pname == "sidecar") && !m.ingress(prom, w, port) {
					t.Errorf("%s: Prometheus cannot scrape %s:%d", overlay, name, port)
				}
			}
		}
		// Default deny: a workload no policy names admits nothing.
		if !m.isolated(stranger, networkingv1.PolicyTypeIngress) {
			t.Errorf("%s: no default-deny ingress policy: pods no policy names admit everyone", overlay)
		}
	}
}

type policyModel struct {
	r        *rendered
	policies []*networkingv1.NetworkPolicy
	pods     map[string]endpoint // by workload name
}

func newPolicyModel(r *rendered) *policyModel {
	m := &policyModel{r: r, pods: map[string]endpoint{}}
	for _, np := range r.policies {
		m.policies = append(m.policies, np)
	}
	add := func(name string, tpl corev1.PodTemplateSpec) {
		ep := endpoint{name: name, namespace: "sagasuite", labels: tpl.Labels, ports: map[string]int32{}}
		for _, c := range tpl.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name != "" {
					ep.ports[p.Name] = p.ContainerPort
				}
			}
		}
		m.pods[name] = ep
	}
	for name, d := range r.deployments {
		add(name, d.Spec.Template)
	}
	for name, s := range r.statefulSets {
		add(name, s.Spec.Template)
	}
	// Operator-made pods, with the labels their operators document.
	for name, k := range r.kafkas {
		m.pods["kafka"] = endpoint{name: "kafka", namespace: "sagasuite",
			labels: map[string]string{"strimzi.io/cluster": name, "strimzi.io/kind": "Kafka", "strimzi.io/broker-role": "true"}}
		// Strimzi writes a policy per listener: its peers, or anyone.
		for _, l := range k.Spec.Kafka.Listeners {
			rule := networkingv1.NetworkPolicyIngressRule{From: l.NetworkPolicyPeers,
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromInt32(int32(l.Port)))}}} // #nosec G115 -- a port number
			m.policies = append(m.policies, &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"strimzi.io/cluster": name, "strimzi.io/kind": "Kafka"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{rule}}})
		}
	}
	for name := range r.pgClusters {
		m.pods["postgres"] = endpoint{name: "postgres", namespace: "sagasuite",
			labels: map[string]string{"cnpg.io/cluster": name, "cnpg.io/instanceRole": "primary"}}
	}
	return m
}

func ptr[T any](v T) *T { return &v }

func (m *policyModel) workload(name string) endpoint {
	ep, ok := m.pods[name]
	if !ok {
		panic("no workload " + name)
	}
	return ep
}

// discovered are the connections made to instances found in etcd rather
// than configured: orders' inventory client (cmd/orders: inventoryPicker,
// when INVENTORY_URL is not set). The port is the one the target's
// sidecar registers (SERVICE_ADDR).
var discovered = map[string]string{"orders": "inventory"}

// edges derives every configured connection of the suite's Deployments.
func (m *policyModel) edges(t *testing.T) []edge {
	t.Helper()
	var out []edge
	for name, d := range m.r.deployments {
		if d.Spec.Template.Labels["app.kubernetes.io/part-of"] != "sagasuite" {
			continue
		}
		from := m.pods[name]
		for _, c := range d.Spec.Template.Spec.Containers {
			for key, value := range m.environment(c) {
				if key == "DATABASE_URL" {
					out = append(out, edge{from: from, to: m.database(), port: 5432, why: c.Name + " " + key})
					continue
				}
				for _, item := range strings.Split(value, ",") {
					host, port, ok := hostPort(item)
					if !ok || host == "127.0.0.1" || host == "localhost" || strings.Contains(host, "$(") {
						continue
					}
					to, tport, ok := m.resolve(host, port)
					if !ok {
						t.Errorf("%s: %s's %s names %s, which is no Service of the overlay", m.r.overlay, name, key, host)
						continue
					}
					out = append(out, edge{from: from, to: to, port: tport, why: c.Name + " " + key + "=" + item})
				}
			}
		}
		if target, ok := discovered[name]; ok && !slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool {
			_, fixed := m.environment(c)["INVENTORY_URL"]
			return fixed
		}) {
			to := m.workload(target)
			for _, c := range m.r.deployments[target].Spec.Template.Spec.Containers {
				if addr, ok := m.environment(c)["SERVICE_ADDR"]; ok {
					_, port, _ := hostPort(addr)
					out = append(out, edge{from: from, to: to, port: port, why: "discovery of " + target + " (" + addr + ")"})
				}
			}
		}
	}
	return out
}

// environment is a container's variables: its own values and the data of
// the ConfigMaps it reads whole; a variable from a Secret maps to "".
func (m *policyModel) environment(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef != nil {
			if cm := m.r.configMaps[from.ConfigMapRef.Name]; cm != nil {
				for k, v := range cm.Data {
					env[k] = v
				}
			}
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// database is where DATABASE_URL points: the CloudNativePG cluster's
// pods, or (no cluster in the overlay) a server outside the cluster.
func (m *policyModel) database() endpoint {
	if ep, ok := m.pods["postgres"]; ok {
		return ep
	}
	return endpoint{name: "external PostgreSQL", external: true}
}

// hostPort reads "scheme://host:port/…" (a scheme's default port when
// none is given) or "host:port".
func hostPort(s string) (string, int32, bool) {
	s = strings.TrimSpace(s)
	var host, port string
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", 0, false
		}
		host, port = u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443", "postgres": "5432"}[u.Scheme]
		}
	} else {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return "", 0, false
		}
	}
	n, err := strconv.ParseInt(port, 10, 32)
	return host, int32(n), err == nil && host != ""
}

// resolve finds the pods behind a host name: a Service (its pods and
// target port), a StatefulSet pod's name (<pod>.<headless service>), a
// Service of another namespace (<service>.<namespace>.svc), or the
// bootstrap Service Strimzi makes for a Kafka cluster.
func (m *policyModel) resolve(host string, port int32) (endpoint, int32, bool) {
	parts := strings.Split(host, ".")
	svcName := parts[0]
	if len(parts) >= 2 {
		if _, ok := m.r.services[parts[1]]; ok {
			svcName = parts[1] // etcd-0.etcd
		} else if _, ok := m.r.services[parts[0]]; !ok {
			return endpoint{name: host, namespace: parts[1]}, port, true
		}
	}
	for name := range m.r.kafkas {
		if svcName == name+"-kafka-bootstrap" {
			return m.pods["kafka"], port, true
		}
	}
	svc, ok := m.r.services[svcName]
	if !ok {
		return endpoint{}, 0, false
	}
	for _, sp := range svc.Spec.Ports {
		if sp.Port != port {
			continue
		}
		for _, ep := range m.pods {
			if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(ep.labels)) {
				target := sp.TargetPort.IntVal
				if sp.TargetPort.Type == intstr.String {
					target = ep.ports[sp.TargetPort.StrVal]
				} else if target == 0 {
					target = sp.Port
				}
				return ep, target, true
			}
		}
	}
	return endpoint{}, 0, false
}

// isolated reports whether any policy of the namespace selects ep for the
// direction.
func (m *policyModel) isolated(ep endpoint, dir networkingv1.PolicyType) bool {
	for _, np := range m.policies {
		if slices.Contains(np.Spec.PolicyTypes, dir) && !ep.external && ep.namespace == "sagasuite" && selects(&np.Spec.PodSelector, ep.labels) {
			return true
		}
	}
	return false
}

func (m *policyModel) ingress(from, to endpoint, port int32) bool {
	if to.external || to.namespace != "sagasuite" || !m.isolated(to, networkingv1.PolicyTypeIngress) {
		return true // not governed by this namespace's policies
	}
	for _, np := range m.policies {
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !selects(&np.Spec.PodSelector, to.labels) {
			continue
		}
		for _, rule := range np.Spec.Ingress {
			if (len(rule.From) == 0 || slices.ContainsFunc(rule.From, func(p networkingv1.NetworkPolicyPeer) bool { return peerMatches(p, from) })) &&
				portMatches(rule.Ports, port, corev1.ProtocolTCP, to) {
				return true
			}
		}
	}
	return false
}

func (m *policyModel) egress(from, to endpoint, port int32, proto corev1.Protocol) bool {
	if !m.isolated(from, networkingv1.PolicyTypeEgress) {
		return true
	}
	for _, np := range m.policies {
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || !selects(&np.Spec.PodSelector, from.labels) {
			continue
		}
		for _, rule := range np.Spec.Egress {
			if (len(rule.To) == 0 || slices.ContainsFunc(rule.To, func(p networkingv1.NetworkPolicyPeer) bool { return peerMatches(p, to) })) &&
				portMatches(rule.Ports, port, proto, to) {
				return true
			}
		}
	}
	return false
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

// peerMatches: an ipBlock stands for addresses outside the cluster only
// (Cilium, for one, never matches pods by address), pod and namespace
// selectors for pods only.
func peerMatches(p networkingv1.NetworkPolicyPeer, ep endpoint) bool {
	if p.IPBlock != nil {
		return ep.external
	}
	if ep.external {
		return false
	}
	if p.NamespaceSelector == nil {
		if ep.namespace != "sagasuite" {
			return false
		}
	} else if !selects(p.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": ep.namespace}) {
		return false
	}
	return p.PodSelector == nil || selects(p.PodSelector, ep.labels)
}

func portMatches(ports []networkingv1.NetworkPolicyPort, port int32, proto corev1.Protocol, to endpoint) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.String:
			if to.ports[p.Port.StrVal] == port {
				return true
			}
		case p.Port.IntVal == port || p.EndPort != nil && port >= p.Port.IntVal && port <= *p.EndPort:
			return true
		}
	}
	return false
}

// Orders and payments reach psp over TLS and trust only the namespace's
// CA: psp serves the certificate cert-manager issues into psp-tls (for
// the name they call it by), they read that Secret's ca.crt, and the CA
// issuer is the one that signs it.
func TestK8sPspIsReachedOverTLS(t *testing.T) {
	for _, overlay := range overlays {
		r := render(t, overlay)
		cert := r.certificates["psp"]
		if cert == nil || cert.Spec.SecretName != "psp-tls" || !slices.Contains(cert.Spec.DNSNames, "psp") {
			t.Fatalf("%s: want a Certificate psp for the name psp into the Secret psp-tls", overlay)
		}
		issuer := r.issuers[cert.Spec.IssuerRef.Name]
		if issuer == nil || issuer.Spec.CA == nil || r.certificates["sagasuite-ca"] == nil || !r.certificates["sagasuite-ca"].Spec.IsCA ||
			r.certificates["sagasuite-ca"].Spec.SecretName != issuer.Spec.CA.SecretName {
			t.Errorf("%s: psp's certificate is not issued by the namespace's own CA", overlay)
		}
		env := func(c corev1.Container) map[string]string {
			m := map[string]string{}
			for _, e := range c.Env {
				m[e.Name] = e.Value
			}
			return m
		}
		mounted := func(pod corev1.PodSpec, c corev1.Container, file string) (secret string, key string) {
			for _, vm := range c.VolumeMounts {
				if !strings.HasPrefix(file, vm.MountPath+"/") {
					continue
				}
				for _, v := range pod.Volumes {
					if v.Name == vm.Name && v.Secret != nil {
						key = strings.TrimPrefix(file, vm.MountPath+"/")
						for _, it := range v.Secret.Items {
							if it.Path == key {
								key = it.Key
							}
						}
						return v.Secret.SecretName, key
					}
				}
			}
			return "", ""
		}
		psp := r.deployments["psp"].Spec.Template.Spec
		pe := env(psp.Containers[0])
		for _, f := range []string{"TLS_CERT_FILE", "TLS_KEY_FILE"} {
			if s, _ := mounted(psp, psp.Containers[0], pe[f]); s != "psp-tls" {
				t.Errorf("%s: psp's %s (%q) is not from the Secret psp-tls", overlay, f, pe[f])
			}
		}
		for _, probe := range []*corev1.Probe{psp.Containers[0].ReadinessProbe, psp.Containers[0].LivenessProbe, psp.Containers[0].StartupProbe} {
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
				t.Errorf("%s: psp's probes must speak HTTPS", overlay)
			}
		}
		for _, name := range []string{"orders", "payments"} {
			pod := r.deployments[name].Spec.Template.Spec
			e := env(pod.Containers[0])
			if !strings.HasPrefix(e["PSP_URL"], "https://psp:") {
				t.Errorf("%s: %s calls psp at %q, want https://psp:…", overlay, name, e["PSP_URL"])
			}
			if s, k := mounted(pod, pod.Containers[0], e["PSP_CA_FILE"]); s != "psp-tls" || k != "ca.crt" {
				t.Errorf("%s: %s's PSP_CA_FILE (%q) is %s/%s, want psp-tls/ca.crt", overlay, name, e["PSP_CA_FILE"], s, k)
			}
		}
	}
}
