package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Hardening: in a pull-request pipeline the manifests are hostile and the
// generated script runs as root. A string built to break out of a quoted
// comment, add a rule or end a here-document must be rejected with an error
// that names the file and the object, never emitted; strings of fields
// kube-proxy does not read must not reach the output either.

// outputModes are every backend and output form of compile.
var outputModes = [][]string{
	{"-b", "iptables", "--iptables-view", "save"},
	{"-b", "iptables", "--iptables-view", "restore"},
	{"-b", "nft", "--nft-view", "dump"},
	{"-b", "nft", "--nft-view", "transaction"},
	{"-b", "ipvs"},
	{"-b", "ipvs", "--ipvs-section", "ipvsadm"},
	{"-b", "ipvs", "--ipvs-section", "ipset"},
	{"-b", "ipvs", "--ipvs-section", "addresses"},
	{"-b", "ipvs", "--ipvs-section", "iptables"},
	{"-b", "userspace"},
	{"-b", "userspace", "--userspace-section", "table"},
}

// hostileSlice is an EndpointSlice for svc web in ns demo with one endpoint.
const hostileSlice = `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.5], nodeName: node-a}]
`

func hostileService(meta, spec string) string {
	return "apiVersion: v1\nkind: Service\nmetadata: " + meta + "\nspec: " + spec + "\n" + hostileSlice
}

const okSpec = "{clusterIP: 10.96.0.10, ports: [{name: http, port: 80}]}"

// rejected: each must fail validation. object is what the error must name.
var rejected = []struct {
	name, input, object string
}{
	{"name closes the comment and adds a rule", hostileService(`{name: "web\" -j ACCEPT\n-A INPUT -j ACCEPT #", namespace: demo}`, okSpec), `Service "demo/web\" -j ACCEPT\n-A INPUT -j ACCEPT #"`},
	{"namespace adds a rule", hostileService(`{name: web, namespace: "demo -j ACCEPT"}`, okSpec), `Service "demo -j ACCEPT/web"`},
	{"name ends the here-document", hostileService(`{name: "web\nSVC2RULES_EOF\nrm -rf /\ncat <<'SVC2RULES_EOF'", namespace: demo}`, okSpec), `Service "demo/web\nSVC2RULES_EOF\nrm -rf /`},
	{"port name with newline and rule", hostileService(`{name: web, namespace: demo}`, `{clusterIP: 10.96.0.10, ports: [{name: "http\"\n-A INPUT -j ACCEPT", port: 80}]}`), "Service demo/web"},
	{"port name with nft syntax", hostileService(`{name: web, namespace: demo}`, `{clusterIP: 10.96.0.10, ports: [{name: "http; flush ruleset", port: 80}]}`), "Service demo/web"},
	{"clusterIP with extra arguments", hostileService(`{name: web, namespace: demo}`, `{clusterIP: "10.96.0.10 -j ACCEPT", ports: [{name: http, port: 80}]}`), "Service demo/web"},
	{"external IP with a newline", hostileService(`{name: web, namespace: demo}`, `{clusterIP: 10.96.0.10, externalIPs: ["1.2.3.4\n-A INPUT -j ACCEPT"], ports: [{name: http, port: 80}]}`), "Service demo/web"},
	{"source range with a quote", hostileService(`{name: web, namespace: demo}`, `{type: LoadBalancer, clusterIP: 10.96.0.10, loadBalancerSourceRanges: ["10.0.0.0/8\" -j ACCEPT"], ports: [{name: http, port: 80}]}`), "Service demo/web"},
	{"protocol with a rule", hostileService(`{name: web, namespace: demo}`, `{clusterIP: 10.96.0.10, ports: [{name: http, port: 80, protocol: "TCP -j ACCEPT"}]}`), "Service demo/web"},
	{"load balancer IP with a rule", hostileService(`{name: web, namespace: demo}`, okSpec+"\nstatus: {loadBalancer: {ingress: [{ip: \"5.6.7.8 -j ACCEPT\"}]}}"), "Service demo/web"},
	{"slice label names another service with a rule", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec: " + okSpec + "\n" + strings.Replace(hostileSlice, "kubernetes.io/service-name: web", `kubernetes.io/service-name: "web\"\n-A INPUT -j ACCEPT"`, 1), "EndpointSlice demo/web-1"},
	{"endpoint address with arguments", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec: " + okSpec + "\n" + strings.Replace(hostileSlice, "[10.244.1.5]", `["10.244.1.5 --to-destination 6.6.6.6"]`, 1), "EndpointSlice demo/web-1"},
	{"endpoint nodeName", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec: " + okSpec + "\n" + strings.Replace(hostileSlice, "nodeName: node-a", `nodeName: "node-a\nSVC2RULES_EOF"`, 1), "EndpointSlice demo/web-1"},
	{"slice port name", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec: " + okSpec + "\n" + strings.Replace(hostileSlice, "name: http, port: 8080", `name: "http\" -j DROP", port: 8080`, 1), "EndpointSlice demo/web-1"},
	{"Endpoints port name", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec: " + okSpec + "\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: web, namespace: demo}\nsubsets: [{addresses: [{ip: 10.244.1.5}], ports: [{name: \"http\\n-A X\", port: 8080}]}]\n", "Endpoints demo/web"},
	{"unicode look-alike name", hostileService(`{name: "wеb", namespace: demo}`, okSpec), `Service "demo/w\u0435b"`},
}

// ignored: fields kube-proxy never reads; the marker must not be emitted.
var ignored = []struct{ name, input string }{
	{"annotation", hostileService(`{name: web, namespace: demo, annotations: {x: "PWNED\"\n-A INPUT -j ACCEPT\nSVC2RULES_EOF"}}`, okSpec)},
	{"label value", hostileService(`{name: web, namespace: demo, labels: {x: PWNED}}`, okSpec)},
	{"load balancer hostname", hostileService(`{name: web, namespace: demo}`, `{type: LoadBalancer, clusterIP: 10.96.0.10, ports: [{name: http, port: 80, nodePort: 30080}]}`+"\nstatus: {loadBalancer: {ingress: [{hostname: PWNED.example.com}]}}")},
	{"endpoint hostname and targetRef", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec: " + okSpec + "\n" + strings.Replace(hostileSlice, "nodeName: node-a", "nodeName: node-a, hostname: pwned, targetRef: {kind: Pod, name: PWNED}", 1)},
	{"appProtocol", hostileService(`{name: web, namespace: demo}`, `{clusterIP: 10.96.0.10, ports: [{name: http, port: 80, appProtocol: PWNED}]}`)},
	{"ExternalName", "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: demo}\nspec: {type: ExternalName, externalName: pwned.example.com}\n---\n" + hostileService(`{name: web, namespace: demo}`, okSpec)},
	{"skipped kind", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: PWNED}\ndata: {x: \"-A INPUT -j ACCEPT\"}\n---\n" + hostileService(`{name: web, namespace: demo}`, okSpec)},
}

func TestCompileRejectsInjection(t *testing.T) {
	for _, tc := range rejected {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := writeFile(t, dir, "in.yaml", tc.input)
			for _, mode := range outputModes {
				out := filepath.Join(dir, "out.txt")
				r := runCmd(t, "", append([]string{"compile", "-f", in, "-o", out, "--node-name", "node-a", "--node-ip", "192.168.0.2"}, mode...)...)
				if r.code == 0 || r.stdout != "" {
					t.Fatalf("%v: exit %d, stdout %q", mode, r.code, r.stdout)
				}
				if !strings.Contains(r.stderr, in+":") || !strings.Contains(r.stderr, tc.object) {
					t.Errorf("%v: error does not name the file and %q: %s", mode, tc.object, r.stderr)
				}
				if strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("%v: error spans lines (a raw newline from the input?): %q", mode, r.stderr)
				}
				if _, err := os.Stat(out); err == nil {
					t.Errorf("%v: output file written", mode)
				}
				entries, _ := os.ReadDir(dir)
				if len(entries) != 1 {
					t.Errorf("%v: files left behind: %v", mode, entries)
				}
			}
		})
	}
}

func TestCompileNeverEmitsIgnoredFields(t *testing.T) {
	for _, tc := range ignored {
		t.Run(tc.name, func(t *testing.T) {
			in := writeFile(t, t.TempDir(), "in.yaml", tc.input)
			for _, mode := range outputModes {
				r := runCmd(t, "", append([]string{"compile", "-f", in, "--node-name", "node-a", "--node-ip", "192.168.0.2"}, mode...)...)
				if r.code != 0 {
					t.Fatalf("%v: exit %d: %s", mode, r.code, r.stderr)
				}
				for _, bad := range []string{"PWNED", "pwned", "-A INPUT -j ACCEPT"} {
					if strings.Contains(r.stdout, bad) {
						t.Errorf("%v: %q in the output", mode, bad)
					}
				}
			}
		})
	}
}

func TestCheckAndDiffWithHostileInput(t *testing.T) {
	for _, tc := range rejected {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := writeFile(t, dir, "in.yaml", tc.input)
			clean := writeFile(t, dir, "clean.yaml", clusterIPService)
			for _, format := range []string{"text", "github", "junit", "sarif", "json"} {
				r := runCmd(t, "", "check", "-f", in, "-o", format)
				if r.code != 2 {
					t.Fatalf("check -o %s: exit %d\n%s%s", format, r.code, r.stdout, r.stderr)
				}
				lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
				for _, l := range lines {
					if strings.HasPrefix(strings.TrimSpace(l), "-A ") || strings.HasPrefix(l, "SVC2RULES_EOF") || strings.HasPrefix(l, "rm -rf") {
						t.Errorf("check -o %s: input line reached the output: %q", format, l)
					}
					if format == "github" && !strings.HasPrefix(l, "::") && l != lines[len(lines)-1] {
						t.Errorf("check -o github: line is no workflow command: %q", l)
					}
				}
			}
			for _, args := range [][]string{{"diff", clean, in}, {"diff", in, clean}, {"diff", "--vs-backend", "nft", in}} {
				r := runCmd(t, "", args...)
				if r.code < 2 || r.stdout != "" || !strings.Contains(r.stderr, tc.object) {
					t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
				}
			}
		})
	}
}

// A hostile file name must not inject workflow commands or lines either.
func TestCheckHostileFileName(t *testing.T) {
	dir := t.TempDir()
	name := "x\n::error file=a.yaml::PWNED\n.yaml"
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Replace(clusterIPService, "name: web\n", "name: Web\n", 1)), 0o644); err != nil {
		t.Skipf("file system refuses the name: %v", err)
	}
	for _, format := range []string{"text", "github"} {
		r := runCmd(t, "", "check", "-f", dir, "-o", format)
		if r.code != 2 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(l, "::error file=a.yaml") {
				t.Errorf("-o %s: injected workflow command: %q", format, l)
			}
		}
	}
}
