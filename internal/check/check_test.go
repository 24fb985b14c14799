package check

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

// svc writes a Service document.
func svc(ns, name, spec string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n%s", name, ns, indent(spec))
}

// slice writes an EndpointSlice document.
func slice(ns, name, service, body string) string {
	labels := ""
	if service != "" {
		labels = "\n  labels:\n    kubernetes.io/service-name: " + service
	}
	return fmt.Sprintf("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s\n  namespace: %s%s\naddressType: IPv4\n%s", name, ns, labels, body)
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func docs(d ...string) string { return strings.Join(d, "---\n") }

const readyHTTP = "ports:\n- name: http\n  port: 8080\nendpoints:\n- addresses: [10.244.1.1]\n  nodeName: node-a\n"

func run(t *testing.T, input string, o Options) *Report {
	t.Helper()
	o.Files = []string{"-"}
	o.Stdin = strings.NewReader(input)
	r, err := Run(o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

// key is "rule Kind ns/name field @line".
func keys(r *Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, fmt.Sprintf("%s %s %s @%d", f.Rule, f.Object(), f.Field, f.Line))
	}
	sort.Strings(out)
	return out
}

func TestFindings(t *testing.T) {
	basic := svc("ns", "web", "clusterIP: 10.96.0.10\nports:\n- name: http\n  port: 80\n")
	cases := []struct {
		name  string
		input string
		opts  Options
		want  []string // exact set of "rule object field @line"
	}{
		{
			name:  "clean",
			input: docs(basic, slice("ns", "web-1", "web", readyHTTP)),
		},
		{
			name:  "invalid yaml and object, other documents still checked",
			input: docs("key: [unclosed\n", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: eighty}]}\n", basic, slice("ns", "web-1", "web", readyHTTP)),
			want:  []string{"invalid-yaml   @1", "invalid-object Service x  @3"},
		},
		{
			name:  "API validation with field lines",
			input: svc("ns", "Web_1", "clusterIP: 10.96.0.300\nports:\n- name: HTTP\n  port: 0\n  protocol: ICMP\n"),
			want: []string{
				"invalid-ip Service ns/Web_1 spec.clusterIP @7",
				"invalid-ip Service ns/Web_1 spec.clusterIPs[0] @6",
				"invalid-name Service ns/Web_1 metadata.name @4",
				"invalid-name Service ns/Web_1 spec.ports[0].name @9",
				"invalid-port Service ns/Web_1 spec.ports[0].port @10",
				"unsupported-value Service ns/Web_1 spec.ports[0].protocol @11",
			},
		},
		{
			name: "type-specific rules",
			input: svc("ns", "a", "clusterIP: 10.96.0.1\nexternalTrafficPolicy: Local\nports:\n- port: 80\n  nodePort: 30001\n") +
				"---\n" + svc("ns", "b", "type: NodePort\nclusterIP: 10.96.0.2\nhealthCheckNodePort: 30005\nloadBalancerSourceRanges: [10.0.0.0/8]\nports:\n- port: 80\n  targetPort: Not_A_Name\n"),
			want: []string{
				"forbidden-field Service ns/a spec.externalTrafficPolicy @8",
				"forbidden-field Service ns/a spec.ports[0].nodePort @11",
				"forbidden-field Service ns/b spec.healthCheckNodePort @21",
				"forbidden-field Service ns/b spec.loadBalancerSourceRanges @22",
				"invalid-port Service ns/b spec.ports[0].targetPort @25",
			},
		},
		{
			name: "duplicate ClusterIPs, node ports and health check node ports",
			input: docs(
				svc("ns", "a", "type: NodePort\nselector: {app: a}\nclusterIP: 10.96.0.1\nports:\n- port: 80\n  name: http\n  nodePort: 30080\n- port: 53\n  name: dns\n  protocol: UDP\n  nodePort: 30053\n"),
				svc("ns", "b", "type: NodePort\nselector: {app: a}\nclusterIP: 10.96.0.1\nports:\n- port: 80\n  name: http\n  nodePort: 30080\n- port: 53\n  name: dns\n  protocol: TCP\n  nodePort: 30053\n"),
				svc("ns", "c", "type: LoadBalancer\nselector: {app: a}\nexternalTrafficPolicy: Local\nclusterIP: 10.96.0.3\nhealthCheckNodePort: 30080\nports:\n- port: 443\n  nodePort: 30443\n"),
				svc("ns", "d", "type: LoadBalancer\nselector: {app: a}\nexternalTrafficPolicy: Local\nclusterIP: 10.96.0.4\nhealthCheckNodePort: 30443\nports:\n- port: 443\n  nodePort: 30444\n"),
			),
			want: []string{
				"duplicate-cluster-ip Service ns/b spec.clusterIP @27",
				"duplicate-node-port Service ns/b spec.ports[0].nodePort @31",
				"duplicate-node-port Service ns/c spec.healthCheckNodePort @47",
				"duplicate-node-port Service ns/d spec.healthCheckNodePort @62",
				"endpoints-not-in-input Service ns/a spec.selector @8",
				"endpoints-not-in-input Service ns/b spec.selector @26",
				"endpoints-not-in-input Service ns/c spec.selector @44",
				"endpoints-not-in-input Service ns/d spec.selector @59",
			},
		},
		{
			name:  "ranges: node ports and service CIDRs",
			input: docs(svc("ns", "a", "type: NodePort\nclusterIP: 10.100.0.1\nports:\n- port: 80\n  nodePort: 8080\n"), slice("ns", "a-1", "a", "ports:\n- port: 80\nendpoints:\n- addresses: [10.244.1.1]\n")),
			opts:  Options{ServiceCIDRs: []string{"10.96.0.0/16"}, NodePortRange: PortRange{8000, 8079}},
			want: []string{
				"cluster-ip-out-of-range Service ns/a spec.clusterIP @8",
				"node-port-out-of-range Service ns/a spec.ports[0].nodePort @11",
			},
		},
		{
			name:  "ServiceCIDR objects count; no CIDR of the family, no check",
			input: docs(svc("ns", "a", "clusterIP: 10.96.0.1\nports:\n- port: 80\n"), "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: extra}\nspec: {cidrs: [10.96.0.0/24]}\n", slice("ns", "a-1", "a", "ports:\n- port: 80\nendpoints:\n- addresses: [10.244.1.1]\n")),
			opts:  Options{ServiceCIDRs: []string{"fd00::/108"}},
		},
		{
			name: "endpoints of missing services, unlabelled slices",
			input: docs(basic, slice("ns", "web-1", "web", readyHTTP), slice("ns", "gone-1", "gone", readyHTTP), slice("ns", "anon", "", readyHTTP),
				"apiVersion: v1\nkind: Endpoints\nmetadata: {name: legacy, namespace: ns}\nsubsets: [{addresses: [{ip: 10.1.1.1}], ports: [{port: 80}]}]\n"),
			want: []string{
				"endpoints-without-service Endpoints ns/legacy metadata.name @57",
				"endpoints-without-service EndpointSlice ns/gone-1 metadata.labels[kubernetes.io/service-name] @33",
				"endpointslice-without-service-label EndpointSlice ns/anon metadata.labels @44",
			},
		},
		{
			name:  "unmatched port, by name and protocol",
			input: docs(svc("ns", "web", "clusterIP: 10.96.0.10\nports:\n- name: http\n  port: 80\n- name: dns\n  port: 53\n  protocol: UDP\n"), slice("ns", "web-1", "web", "ports:\n- name: http\n  port: 8080\n- name: dns\n  port: 53\nendpoints:\n- addresses: [10.244.1.1]\n")),
			want:  []string{"unmatched-service-port Service ns/web spec.ports[1] @11"},
		},
		{
			name:  "no ready endpoints; terminating fallback; no endpoints at all",
			input: docs(basic, slice("ns", "web-1", "web", "ports:\n- name: http\n  port: 8080\nendpoints:\n- addresses: [10.244.1.1]\n  conditions: {ready: false, serving: false}\n"), svc("ns", "bare", "clusterIP: 10.96.0.11\nports:\n- port: 80\n")),
			want: []string{
				"no-endpoints Service ns/bare metadata.name @30",
				"no-ready-endpoints Service ns/web spec.ports[0] @9",
			},
		},
		{
			name: "local traffic policies on --node-name",
			input: docs(svc("ns", "lb", "type: LoadBalancer\nexternalTrafficPolicy: Local\ninternalTrafficPolicy: Local\nclusterIP: 10.96.0.12\nhealthCheckNodePort: 32000\nports:\n- name: http\n  port: 80\n  nodePort: 30080\n"),
				slice("ns", "lb-1", "lb", readyHTTP)),
			opts: Options{NodeName: "node-b"},
			want: []string{ // external and internal
				"no-local-endpoints Service ns/lb spec.ports[0] @13",
				"no-local-endpoints Service ns/lb spec.ports[0] @13",
			},
		},
		{
			name:  "local endpoint present: clean",
			input: docs(svc("ns", "lb", "type: NodePort\nexternalTrafficPolicy: Local\nclusterIP: 10.96.0.12\nports:\n- name: http\n  port: 80\n  nodePort: 30080\n"), slice("ns", "lb-1", "lb", readyHTTP)),
			opts:  Options{NodeName: "node-a"},
		},
		{
			name: "topology hints: incomplete, other zone",
			input: docs(basic, slice("ns", "web-1", "web", "ports:\n- name: http\n  port: 8080\nendpoints:\n- addresses: [10.244.1.1]\n  hints: {forZones: [{name: z1}]}\n- addresses: [10.244.1.2]\n"),
				svc("ns", "z", "clusterIP: 10.96.0.13\nports:\n- name: http\n  port: 80\n"), slice("ns", "z-1", "z", "ports:\n- name: http\n  port: 8080\nendpoints:\n- addresses: [10.244.1.1]\n  hints: {forZones: [{name: z1}]}\n")),
			opts: Options{NodeName: "node-a", Zone: "z2"},
			want: []string{
				"topology-hints-ignored Service ns/web spec.ports[0] @9",
				"topology-hints-ignored Service ns/z spec.ports[0] @36",
			},
		},
		{
			name:  "topology hints applied: clean",
			input: docs(basic, slice("ns", "web-1", "web", "ports:\n- name: http\n  port: 8080\nendpoints:\n- addresses: [10.244.1.1]\n  hints: {forZones: [{name: z1}]}\n")),
			opts:  Options{NodeName: "node-a", Zone: "z1"},
		},
		{
			name: "ignored objects and kinds, duplicates",
			input: docs(svc("ns", "headless", "clusterIP: None\nports:\n- port: 80\n"), svc("ns", "ext", "type: ExternalName\nexternalName: example.com\n"),
				"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n", basic, basic, slice("ns", "web-1", "web", readyHTTP)),
			want: []string{
				"duplicate-object Service ns/web metadata.name @38",
				"kind-skipped   @0",
				"service-ignored Service ns/ext spec.type @17",
				"service-ignored Service ns/headless  @1",
			},
		},
		{
			name: "workloads: endpoints derived, selector matching no pod, unknown named targetPort",
			input: docs(
				svc("ns", "web", "clusterIP: 10.96.0.10\nselector: {app: web}\nports:\n- name: http\n  port: 80\n  targetPort: http\n- name: metrics\n  port: 9090\n  targetPort: metrics\n"),
				svc("ns", "typo", "clusterIP: 10.96.0.11\nselector: {app: wbe}\nports:\n- port: 80\n"),
				"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: ns}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: c\n        image: nginx\n        ports: [{name: http, containerPort: 8080}]\n",
			),
			want: []string{
				"assumed Service ns/web  @1",
				"selector-matches-no-pod Service ns/typo spec.selector @24",
				"target-port-not-found Service ns/web  @1",
				"unmatched-service-port Service ns/web spec.ports[1] @13",
			},
		},
		{
			name:  "workloads ignored with --no-allocate",
			input: docs(svc("ns", "web", "clusterIP: 10.96.0.10\nselector: {app: web}\nports:\n- port: 80\n"), "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns, labels: {app: web}}\nspec: {containers: [{name: c, image: x}]}\n"),
			opts:  Options{NoAllocate: true},
			want:  []string{"endpoints-not-in-input Service ns/web spec.selector @8", "note   @0"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.input, tc.opts)
			got := keys(r)
			want := append([]string(nil), tc.want...)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("findings:\n got: %q\nwant: %q", got, want)
				for _, f := range r.Findings {
					t.Logf("%s: %s", f.Rule, f.Message)
				}
			}
			for _, f := range r.Findings {
				if f.File != "<stdin>" && f.Rule != "kind-skipped" && f.Rule != "note" {
					t.Errorf("finding without its file: %+v", f)
				}
				if _, ok := ruleByID(f.Rule); !ok {
					t.Errorf("rule %q is not in the catalogue", f.Rule)
				}
			}
		})
	}
}

func TestParsePortRange(t *testing.T) {
	for in, want := range map[string]PortRange{"30000-32767": {30000, 32767}, "30000+2767": {30000, 32767}, " 1-65535 ": {1, 65535}} {
		if got, err := ParsePortRange(in); err != nil || got != want {
			t.Errorf("ParsePortRange(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "30000", "3-2", "0-10", "1-70000", "a-b", "-5"} {
		if _, err := ParsePortRange(in); err == nil {
			t.Errorf("ParsePortRange(%q): no error", in)
		}
	}
}

func TestRunErrors(t *testing.T) {
	if _, err := Run(Options{Files: []string{"/nonexistent/x.yaml"}}); err == nil {
		t.Error("missing file: no error")
	}
	if _, err := Run(Options{Files: []string{"-"}, Stdin: strings.NewReader(strings.Repeat("---\nkind: A\n", 5)), MaxDocuments: 4}); err == nil || !strings.Contains(err.Error(), "more than 4") {
		t.Errorf("document limit: %v", err)
	}
	if _, err := Run(Options{Files: []string{"-"}, Stdin: strings.NewReader(""), ServiceCIDRs: []string{"nope"}}); err == nil {
		t.Error("bad --service-cidrs: no error")
	}
}

// TestRulesAreDocumented keeps docs/check.md in step with the catalogue.
func TestRulesAreDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/check.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range Rules {
		if seen[r.ID] {
			t.Errorf("rule %s twice in the catalogue", r.ID)
		}
		seen[r.ID] = true
		row := fmt.Sprintf("| `%s` | %s |", r.ID, r.Severity)
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/check.md has no row %q", row)
		}
	}
}
