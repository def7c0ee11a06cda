package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var overlays = []string{"dev", "production-like"}

// envRef is Kubernetes' $(NAME) reference to another variable in a value.
var envRef = regexp.MustCompile(`\$\(([A-Z_]+)\)`)

// rendered is one overlay, rendered by kustomize (the library `kubectl
// kustomize` uses) and decoded strictly into the API types.
type rendered struct {
	overlay      string
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	pdbs         map[string]*policyv1.PodDisruptionBudget
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	policies     map[string]*networkingv1.NetworkPolicy
	podMonitors  map[string]*monitoringv1.PodMonitor
	kafkas       map[string]*strimziKafka
	nodePools    map[string]*strimziNodePool
	topics       map[string]*strimziTopic
	pgClusters   map[string]*cnpgCluster
	issuers      map[string]*certManagerIssuer
	certificates map[string]*certManagerCertificate
}

// The custom resources, with the fields their operators document that
// these manifests use (Strimzi kafka.strimzi.io/v1beta2, CloudNativePG
// postgresql.cnpg.io/v1). Decoded strictly: a misspelt field fails.
type (
	strimziKafka struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			Kafka struct {
				Version   string `json:"version,omitempty"`
				Listeners []struct {
					Name string `json:"name"`
					Port int    `json:"port"`
					Type string `json:"type"`
					TLS  bool   `json:"tls"`
					// NetworkPolicyPeers: Strimzi's policy for the listener.
					NetworkPolicyPeers []networkingv1.NetworkPolicyPeer `json:"networkPolicyPeers,omitempty"`
				} `json:"listeners"`
				Config map[string]any `json:"config"`
			} `json:"kafka"`
			EntityOperator struct {
				TopicOperator *struct{} `json:"topicOperator,omitempty"`
				UserOperator  *struct{} `json:"userOperator,omitempty"`
			} `json:"entityOperator"`
		} `json:"spec"`
	}
	strimziNodePool struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			Replicas int      `json:"replicas"`
			Roles    []string `json:"roles"`
			Storage  struct {
				Type    string `json:"type"`
				Volumes []struct {
					ID            int    `json:"id"`
					Type          string `json:"type"`
					Size          string `json:"size"`
					DeleteClaim   bool   `json:"deleteClaim"`
					KRaftMetadata string `json:"kraftMetadata,omitempty"`
				} `json:"volumes"`
			} `json:"storage"`
			Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
			Template  *struct {
				Pod *struct {
					Affinity *corev1.Affinity `json:"affinity,omitempty"`
				} `json:"pod,omitempty"`
			} `json:"template,omitempty"`
		} `json:"spec"`
	}
	strimziTopic struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			TopicName  string         `json:"topicName"`
			Partitions int            `json:"partitions"`
			Replicas   int            `json:"replicas"`
			Config     map[string]any `json:"config"`
		} `json:"spec"`
	}
	certManagerIssuer struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			SelfSigned *struct{} `json:"selfSigned,omitempty"`
			CA         *struct {
				SecretName string `json:"secretName"`
			} `json:"ca,omitempty"`
		} `json:"spec"`
	}
	certManagerCertificate struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			IsCA        bool     `json:"isCA,omitempty"`
			CommonName  string   `json:"commonName,omitempty"`
			SecretName  string   `json:"secretName"`
			DNSNames    []string `json:"dnsNames,omitempty"`
			IPAddresses []string `json:"ipAddresses,omitempty"`
			Duration    string   `json:"duration,omitempty"`
			RenewBefore string   `json:"renewBefore,omitempty"`
			Usages      []string `json:"usages,omitempty"`
			PrivateKey  *struct {
				Algorithm      string `json:"algorithm"`
				Size           int    `json:"size"`
				RotationPolicy string `json:"rotationPolicy,omitempty"`
			} `json:"privateKey,omitempty"`
			IssuerRef struct {
				Name string `json:"name"`
				Kind string `json:"kind"`
			} `json:"issuerRef"`
		} `json:"spec"`
	}
	cnpgCluster struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			Instances int `json:"instances"`
			Storage   struct {
				Size string `json:"size"`
			} `json:"storage"`
			Bootstrap struct {
				InitDB struct {
					Database    string   `json:"database"`
					Owner       string   `json:"owner"`
					PostInitSQL []string `json:"postInitSQL"`
				} `json:"initdb"`
			} `json:"bootstrap"`
			PostgreSQL struct {
				Parameters map[string]string `json:"parameters"`
			} `json:"postgresql"`
			Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
		} `json:"spec"`
	}
)

func strict(doc []byte, into any) error {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

func put[T any](m map[string]*T, name string, doc []byte) error {
	v := new(T)
	if err := strict(doc, v); err != nil {
		return err
	}
	m[name] = v
	return nil
}

var (
	kustomizeMu sync.Mutex
	kustomized  = map[string]resmap.ResMap{} // overlay → its rendering, made once per test run
)

func kustomize(overlay string) (resmap.ResMap, error) {
	kustomizeMu.Lock()
	defer kustomizeMu.Unlock()
	if m, ok := kustomized[overlay]; ok {
		return m, nil
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join("k8s", "overlays", overlay))
	if err == nil {
		kustomized[overlay] = m
	}
	return m, err
}

func render(t *testing.T, overlay string) *rendered {
	t.Helper()
	resMap, err := kustomize(overlay)
	if err != nil {
		t.Fatalf("overlay %s does not render: %v", overlay, err)
	}
	r := &rendered{overlay: overlay,
		deployments: map[string]*appsv1.Deployment{}, statefulSets: map[string]*appsv1.StatefulSet{},
		services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		policies: map[string]*networkingv1.NetworkPolicy{}, podMonitors: map[string]*monitoringv1.PodMonitor{},
		kafkas: map[string]*strimziKafka{}, nodePools: map[string]*strimziNodePool{}, topics: map[string]*strimziTopic{},
		pgClusters: map[string]*cnpgCluster{}, issuers: map[string]*certManagerIssuer{}, certificates: map[string]*certManagerCertificate{},
	}
	for _, res := range resMap.Resources() {
		doc, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		gvk := res.GetGvk()
		kind := gvk.Group + "/" + gvk.Version + "/" + gvk.Kind
		name := res.GetName()
		switch kind {
		case "/v1/Namespace":
			err = strict(doc, &corev1.Namespace{})
		case "/v1/ConfigMap":
			err = put(r.configMaps, name, doc)
		case "/v1/Secret":
			err = put(r.secrets, name, doc)
		case "/v1/Service":
			err = put(r.services, name, doc)
		case "apps/v1/Deployment":
			err = put(r.deployments, name, doc)
		case "apps/v1/StatefulSet":
			err = put(r.statefulSets, name, doc)
		case "policy/v1/PodDisruptionBudget":
			err = put(r.pdbs, name, doc)
		case "autoscaling/v2/HorizontalPodAutoscaler":
			err = put(r.hpas, name, doc)
		case "networking.k8s.io/v1/NetworkPolicy":
			err = put(r.policies, name, doc)
		case "monitoring.coreos.com/v1/PodMonitor":
			err = put(r.podMonitors, name, doc)
		case "kafka.strimzi.io/v1beta2/Kafka":
			err = put(r.kafkas, name, doc)
		case "kafka.strimzi.io/v1beta2/KafkaNodePool":
			err = put(r.nodePools, name, doc)
		case "kafka.strimzi.io/v1beta2/KafkaTopic":
			err = put(r.topics, name, doc)
		case "postgresql.cnpg.io/v1/Cluster":
			err = put(r.pgClusters, name, doc)
		case "cert-manager.io/v1/Issuer":
			err = put(r.issuers, name, doc)
		case "cert-manager.io/v1/Certificate":
			err = put(r.certificates, name, doc)
		default:
			err = fmt.Errorf("a kind these tests do not check")
		}
		if err != nil {
			t.Errorf("%s: %s %s: %v", overlay, kind, name, err)
		}
		if ns := res.GetNamespace(); kind != "/v1/Namespace" && ns != "sagasuite" {
			t.Errorf("%s: %s %s is in namespace %q", overlay, kind, name, ns)
		}
	}
	return r
}

type workload struct {
	kind, name string
	replicas   int32
	pod        corev1.PodSpec
}

func (r *rendered) workloads() []workload {
	var out []workload
	for name, d := range r.deployments {
		out = append(out, workload{"Deployment", name, *d.Spec.Replicas, d.Spec.Template.Spec})
	}
	for name, s := range r.statefulSets {
		out = append(out, workload{"StatefulSet", name, *s.Spec.Replicas, s.Spec.Template.Spec})
	}
	return out
}

// Every workload: probes, resources, a non-root and read-only security
// context, exact image tags.
func TestK8sWorkloadsAreHardened(t *testing.T) {
	for _, overlay := range overlays {
		r := render(t, overlay)
		for _, w := range r.workloads() {
			where := overlay + ": " + w.kind + " " + w.name
			if w.pod.SecurityContext == nil || w.pod.SecurityContext.RunAsNonRoot == nil || !*w.pod.SecurityContext.RunAsNonRoot {
				t.Errorf("%s: pod not runAsNonRoot", where)
			}
			if w.pod.AutomountServiceAccountToken == nil || *w.pod.AutomountServiceAccountToken {
				t.Errorf("%s: mounts a service account token it does not need", where)
			}
			for _, c := range w.pod.Containers {
				where := where + " container " + c.Name
				if c.ReadinessProbe == nil || c.LivenessProbe == nil {
					t.Errorf("%s: no readiness or liveness probe", where)
				}
				req, lim := c.Resources.Requests, c.Resources.Limits
				if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() || lim.Cpu().IsZero() {
					t.Errorf("%s: resources %+v: want cpu and memory requests and limits", where, c.Resources)
				}
				sc := c.SecurityContext
				if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
					sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
					sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
					t.Errorf("%s: want allowPrivilegeEscalation false, readOnlyRootFilesystem true, capabilities drop ALL", where)
				}
				_, tag, ok := strings.Cut(c.Image[strings.LastIndex(c.Image, "/")+1:], ":")
				if !ok || tag == "" || tag == "latest" {
					t.Errorf("%s: image %q has no exact tag", where, c.Image)
				}
			}
		}
	}
}

// contractPorts are the service ports of README's table.
var contractPorts = map[string]int32{"orders": 8081, "payments": 8082, "inventory": 8083, "psp": 8090}

// The suite's containers run one of the image's commands, with only the
// environment that binary reads and everything it requires, on the ports
// README's table gives, probed where they listen.
func TestK8sSuiteContainersMatchTheBinaries(t *testing.T) {
	for _, overlay := range overlays {
		r := render(t, overlay)
		for name, d := range r.deployments {
			for _, c := range d.Spec.Template.Spec.Containers {
				if !strings.Contains(c.Image, "sagasuite") {
					continue
				}
				where := overlay + ": " + name + "/" + c.Name
				given := map[string]string{}
				for _, from := range c.EnvFrom {
					cm, ok := r.configMaps[from.ConfigMapRef.Name]
					if !ok {
						t.Errorf("%s: envFrom ConfigMap %s is not rendered", where, from.ConfigMapRef.Name)
						continue
					}
					for k, v := range cm.Data {
						given[k] = v
					}
				}
				expanded := map[string]bool{} // names used only as $(NAME) in other values
				for _, e := range c.Env {
					given[e.Name] = e.Value
					for _, m := range envRef.FindAllStringSubmatch(e.Value, -1) {
						expanded[m[1]] = true
					}
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						given[e.Name] = "secret"
						if ref := e.ValueFrom.SecretKeyRef.Name; r.secrets[ref] == nil && !externalSecret(r, ref) {
							t.Errorf("%s: %s comes from Secret %s, which nothing creates", where, e.Name, ref)
						}
					}
					if e.Name == "INSTANCE_ID" && (e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name") {
						t.Errorf("%s: INSTANCE_ID must come from the pod name (downward API)", where)
					}
				}
				checkEnv(t, where, c.Command, given, expanded)
				// Listening port = container port = probes' port.
				port, err := strconv.Atoi(strings.TrimPrefix(given["HTTP_ADDR"], ":"))
				if err != nil || len(c.Ports) != 1 || c.Ports[0].ContainerPort != int32(port) {
					t.Errorf("%s: HTTP_ADDR %q and container ports %v disagree", where, given["HTTP_ADDR"], c.Ports)
					continue
				}
				for probe, p := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
					if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != probe || p.HTTPGet.Port.String() != c.Ports[0].Name {
						t.Errorf("%s: want an HTTP probe of %s on port %s", where, probe, c.Ports[0].Name)
					}
				}
				if c.Name == name && int32(port) != contractPorts[name] {
					t.Errorf("%s listens on %d, README says %d", where, port, contractPorts[name])
				}
			}
			if s := r.services[name]; s == nil || s.Spec.Ports[0].Port != contractPorts[name] {
				if _, suite := contractPorts[name]; suite {
					t.Errorf("%s: Service %s missing or not on port %d", overlay, name, contractPorts[name])
				}
			}
		}
	}
}

// externalSecret: Secrets an overlay expects someone else to create
// (docs/kubernetes.md): CloudNativePG creates <cluster>-app in dev; in
// production-like the operator of the cluster creates both.
func externalSecret(r *rendered, name string) bool {
	if r.overlay == "production-like" {
		return name == "sagasuite-secrets" || name == "sagasuite-database-app" || name == "psp-keys"
	}
	return r.pgClusters[strings.TrimSuffix(name, "-app")] != nil
}

// Real replicas: inventory always has two or more (discovery, election);
// production-like runs several of each service on different nodes, a
// three-node Kafka with replication 3 and min.insync.replicas 2, and
// three etcd members.
func TestK8sReplicasAndDependencies(t *testing.T) {
	for _, overlay := range overlays {
		r := render(t, overlay)
		for _, name := range []string{"orders", "payments", "inventory", "psp"} {
			if r.deployments[name] == nil {
				t.Fatalf("%s: no %s Deployment", overlay, name)
			}
		}
		if *r.deployments["inventory"].Spec.Replicas < 2 {
			t.Errorf("%s: inventory has fewer than 2 replicas", overlay)
		}
		for _, name := range []string{"orders", "inventory"} {
			if r.hpas[name] == nil || r.hpas[name].Spec.ScaleTargetRef.Name != name {
				t.Errorf("%s: no HorizontalPodAutoscaler for %s", overlay, name)
			}
		}
		for _, name := range []string{"orders", "payments", "inventory"} {
			if r.pdbs[name] == nil {
				t.Errorf("%s: no PodDisruptionBudget for %s", overlay, name)
			}
		}
		cfg := r.configMaps["sagasuite-kafka"].Data
		partitions, _ := strconv.Atoi(cfg["KAFKA_PARTITIONS"])

		// Kafka: the services' bootstrap address is the Strimzi cluster's.
		if len(r.kafkas) != 1 || len(r.nodePools) != 1 {
			t.Fatalf("%s: want one Kafka and one node pool", overlay)
		}
		var brokers int
		for name, k := range r.kafkas {
			if want := name + "-kafka-bootstrap:9092"; cfg["KAFKA_BROKERS"] != want {
				t.Errorf("%s: KAFKA_BROKERS=%s, the cluster's bootstrap is %s", overlay, cfg["KAFKA_BROKERS"], want)
			}
			if k.Spec.EntityOperator.TopicOperator == nil {
				t.Errorf("%s: no topic operator: the KafkaTopics would not be created", overlay)
			}
			for _, np := range r.nodePools {
				brokers = np.Spec.Replicas
				if np.Labels["strimzi.io/cluster"] != name || !slices.Contains(np.Spec.Roles, "broker") || !slices.Contains(np.Spec.Roles, "controller") {
					t.Errorf("%s: node pool %s does not serve cluster %s as controller and broker", overlay, np.Name, name)
				}
			}
			wantISR := min(2, brokers)
			if fmt.Sprint(k.Spec.Kafka.Config["min.insync.replicas"]) != fmt.Sprint(wantISR) {
				t.Errorf("%s: min.insync.replicas %v, want %d", overlay, k.Spec.Kafka.Config["min.insync.replicas"], wantISR)
			}
		}
		var topics []string
		for _, tp := range r.topics {
			topics = append(topics, tp.Spec.TopicName)
			if tp.Spec.Replicas != brokers || tp.Spec.Partitions != partitions || fmt.Sprint(tp.Spec.Config["min.insync.replicas"]) != fmt.Sprint(min(2, brokers)) {
				t.Errorf("%s: topic %s: replicas %d, partitions %d, min.insync.replicas %v; want %d, %d (KAFKA_PARTITIONS), %d",
					overlay, tp.Spec.TopicName, tp.Spec.Replicas, tp.Spec.Partitions, tp.Spec.Config["min.insync.replicas"], brokers, partitions, min(2, brokers))
			}
		}
		slices.Sort(topics)
		want := []string{"inventory.events", "inventory.events.dlq", "orders.events", "orders.events.dlq", "payments.events", "payments.events.dlq"}
		if !slices.Equal(topics, want) {
			t.Errorf("%s: topics %v, want %v", overlay, topics, want)
		}

		// etcd: every endpoint is a member of the StatefulSet.
		etcd := r.statefulSets["etcd"]
		for _, ep := range strings.Split(r.configMaps["sagasuite-etcd"].Data["ETCD_ENDPOINTS"], ",") {
			var n int
			if _, err := fmt.Sscanf(ep, "etcd-%d.etcd:2379", &n); err != nil || n >= int(*etcd.Spec.Replicas) {
				t.Errorf("%s: ETCD_ENDPOINTS has %s, not one of the %d etcd members", overlay, ep, *etcd.Spec.Replicas)
			}
		}
		members := strings.Count(strings.Join(etcd.Spec.Template.Spec.Containers[0].Args, " "), "=http://etcd-")
		if members != int(*etcd.Spec.Replicas) {
			t.Errorf("%s: --initial-cluster names %d members, the StatefulSet runs %d", overlay, members, *etcd.Spec.Replicas)
		}

		if overlay == "production-like" {
			if brokers != 3 || *etcd.Spec.Replicas != 3 {
				t.Errorf("production-like: %d Kafka nodes and %d etcd members, want 3 and 3", brokers, *etcd.Spec.Replicas)
			}
			for _, name := range []string{"orders", "payments", "inventory"} {
				d := r.deployments[name]
				if *d.Spec.Replicas < 2 || d.Spec.Template.Spec.Affinity == nil || d.Spec.Template.Spec.Affinity.PodAntiAffinity == nil {
					t.Errorf("production-like: %s wants several replicas with pod anti-affinity", name)
				}
			}
			if len(r.pgClusters) != 0 {
				t.Error("production-like runs PostgreSQL in the cluster; it uses an external server")
			}
			// Admin routes on loopback, one port per container of a pod.
			for name, d := range r.deployments {
				seen := map[string]bool{}
				for _, c := range d.Spec.Template.Spec.Containers {
					if !strings.Contains(c.Image, "sagasuite") {
						continue
					}
					addr := ""
					for _, e := range c.Env {
						if e.Name == "ADMIN_ADDR" {
							addr = e.Value
						}
					}
					if !strings.HasPrefix(addr, "127.0.0.1:") || seen[addr] {
						t.Errorf("production-like: %s/%s: ADMIN_ADDR %q, want a loopback address of its own", name, c.Name, addr)
					}
					seen[addr] = true
				}
			}
		} else if len(r.pgClusters) != 1 {
			t.Error("dev: want one CloudNativePG cluster")
		}
	}
}

// The Collector runs the compose stack's configuration file, valid in the
// environment its Deployment gives; the dashboards ConfigMap carries every
// dashboard; the PodMonitor scrapes the ports the pods name.
func TestK8sObservability(t *testing.T) {
	for _, overlay := range overlays {
		r := render(t, overlay)
		col := r.deployments["otel-collector"]
		if col == nil {
			t.Fatalf("%s: no Collector", overlay)
		}
		env := map[string]string{}
		for _, e := range col.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		cm := r.configMaps[col.Spec.Template.Spec.Volumes[0].ConfigMap.Name]
		own, err := os.ReadFile("collector/otel-collector.yaml")
		if err != nil || cm == nil || cm.Data["config.yaml"] != string(own) {
			t.Errorf("%s: the Collector's ConfigMap is not deploy/collector/otel-collector.yaml", overlay)
		}
		t.Run(overlay+"/collector", func(t *testing.T) { validateCollector(t, overlay, env) })
		if got := r.configMaps["sagasuite-config"].Data["OTEL_EXPORTER_OTLP_ENDPOINT"]; got != "http://otel-collector:4318" || r.services["otel-collector"] == nil {
			t.Errorf("%s: services export to %s; the Collector's Service is otel-collector:4318", overlay, got)
		}

		dash := r.configMaps["sagasuite-dashboards"]
		files, _ := filepath.Glob(filepath.Join(root, "dashboards", "*.json"))
		if dash == nil || dash.Labels["grafana_dashboard"] != "1" || len(dash.Data) != len(files) {
			t.Fatalf("%s: want a ConfigMap labelled grafana_dashboard with the %d dashboards", overlay, len(files))
		}
		for _, f := range files {
			raw, _ := os.ReadFile(f)
			if dash.Data[filepath.Base(f)] != string(raw) {
				t.Errorf("%s: the dashboards ConfigMap's %s differs from dashboards/ (list it in dashboards/kustomization.yaml)", overlay, filepath.Base(f))
			}
		}

		// Every endpoint's port is named by a suite pod, and "http" by
		// every one of them (psp has no sidecar port).
		for _, pm := range r.podMonitors {
			for _, ep := range pm.Spec.PodMetricsEndpoints {
				namedBy := 0
				for name, d := range r.deployments {
					if d.Spec.Template.Labels["app.kubernetes.io/part-of"] != "sagasuite" {
						continue
					}
					named := slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool {
						return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == *ep.Port })
					})
					if named {
						namedBy++
					} else if *ep.Port == "http" {
						t.Errorf("%s: the PodMonitor scrapes port http, which %s does not name", overlay, name)
					}
				}
				if namedBy == 0 {
					t.Errorf("%s: the PodMonitor scrapes port %s, which no suite pod names", overlay, *ep.Port)
				}
			}
		}
	}
}
