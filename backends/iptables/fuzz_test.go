package iptables

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/canon"
)

// The fuzz target of this backend feeds manifests (not plans) through the
// whole pipeline, because what must never happen is a manifest string
// reaching the rules: the output must parse back as iptables-restore input,
// hold only the rules kube-proxy writes, and every comment must be one of
// kube-proxy's, built from names that passed validation.

// fuzzSeeds are manifests meant to break out of a quoted comment, add a
// rule or end a here-document, and ordinary ones.
var fuzzSeeds = []string{
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.10\n  externalIPs: [1.2.3.4]\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 32000\n  loadBalancerSourceRanges: [203.0.113.0/24]\n  sessionAffinity: ClientIP\n  ports: [{name: http, port: 80, nodePort: 30080}, {name: dns, port: 53, protocol: UDP, nodePort: 30053}]\nstatus: {loadBalancer: {ingress: [{ip: 5.6.7.8}]}}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]\nendpoints:\n- {addresses: [10.244.1.1], nodeName: node-a}\n- {addresses: [10.244.2.1], nodeName: node-b, conditions: {ready: false, serving: true, terminating: true}}\n",
	"apiVersion: v1\nkind: Service\nmetadata: {name: v6, namespace: demo}\nspec: {clusterIP: fd00::10, ipFamilies: [IPv6], ports: [{port: 80}]}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: v6-1, namespace: demo, labels: {kubernetes.io/service-name: v6}}\naddressType: IPv6\nports: [{port: 8080}]\nendpoints: [{addresses: [\"fd00:244::1\"]}]\n",
	"apiVersion: v1\nkind: Service\nmetadata:\n  name: \"web\\\" -j ACCEPT\\n-A INPUT -j ACCEPT\\nCOMMIT\\n#\"\n  namespace: demo\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n",
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: \"demo --comment x -j ACCEPT\"}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n",
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo, annotations: {x: \"\\\"\\n-A INPUT -j ACCEPT\\nSVC2RULES_EOF\\n\"}}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80, name: \"http\\\"\\n-A INPUT -j ACCEPT\"}]}\n",
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec: {clusterIP: \"10.96.0.10 -j ACCEPT\", ports: [{port: 80}]}\n",
	"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: \"web\\\"\\n-A X\"}}\naddressType: IPv4\nports: [{port: 80}]\nendpoints: [{addresses: [\"10.0.0.1 --to-destination 1.1.1.1\"], nodeName: \"n\\nSVC2RULES_EOF\", hints: {forZones: [{name: \"z\\\"\\n-A INPUT -j ACCEPT\"}]}}]\n",
	"apiVersion: v1\nkind: Endpoints\nmetadata: {name: web, namespace: demo}\nsubsets: [{addresses: [{ip: 10.0.0.1, hostname: \"h\\\"\\n-A X\", nodeName: \"x\\ny\"}], ports: [{port: 80, name: \"p\\\" -j DROP\"}]}]\n",
}

var (
	declRE = regexp.MustCompile(`^:([A-Z0-9-]+) (-|ACCEPT) \[0:0\]$`)
	// A DNS label, the shape of every validated name.
	label = `[a-z0-9](?:[-a-z0-9]*[a-z0-9])?`
	spn   = label + `/` + label + `(?::` + label + `)?`
	// commentRE is every comment kube-proxy writes.
	commentRE = regexp.MustCompile(`^(?:` +
		spn + `(?: cluster IP| external IP| loadbalancer IP| has no endpoints| has no local endpoints| health check node port| -> \S+| traffic not accepted by KUBE-FW-[A-Z2-7]{16})?` +
		`|(?:masquerade|pod|masquerade LOCAL|route LOCAL) traffic for ` + spn + ` external destinations` +
		`|other traffic to ` + spn + ` will be dropped by KUBE-PROXY-FIREWALL` +
		`|kubernetes (?:service traffic requiring SNAT|forwarding rules|forwarding conntrack rule|service portals|externally-visible service portals|health check service ports|load balancer firewall|postrouting rules)` +
		`|kubernetes service nodeports; NOTE: this must be the last rule in this chain|block incoming localnet connections)$`)
	tokenRE   = regexp.MustCompile(`^[A-Za-z0-9.:/_,!\[\]+-]+$`)
	targets   = map[string]bool{"ACCEPT": true, "DROP": true, "REJECT": true, "RETURN": true, "MARK": true, "MASQUERADE": true, "DNAT": true}
	endpoint  = regexp.MustCompile(`^(?:[0-9.]+|\[[0-9a-f:]+\]):[0-9]+$`)
	injection = []string{"-A INPUT -j ACCEPT", "SVC2RULES_EOF", "--to-destination 1.1.1.1", "-j DROP\""}
)

// checkOutput is the property every rendered text must have.
func checkOutput(t *testing.T, text string) {
	t.Helper()
	if _, err := canon.ParseIPTables(text); err != nil {
		t.Fatalf("output does not parse back: %v\n%s", err, text)
	}
	for _, s := range injection {
		if strings.Contains(text, s) {
			t.Fatalf("injected text %q in the output:\n%s", s, text)
		}
	}
	declared := map[string]bool{}
	var rules [][]string
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		for _, c := range line {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("line %d: character %q", n+1, c)
			}
		}
		switch {
		case line == "*filter" || line == "*nat" || line == "COMMIT":
		case declRE.MatchString(line):
			declared[declRE.FindStringSubmatch(line)[1]] = true
		case strings.HasPrefix(line, "-A "):
			toks, err := canon.Tokenize(line)
			if err != nil {
				t.Fatalf("line %d: %v", n+1, err)
			}
			rules = append(rules, toks)
		default:
			t.Fatalf("line %d is no iptables-restore line: %q", n+1, line)
		}
	}
	for _, toks := range rules {
		if !declared[toks[1]] {
			t.Fatalf("rule in undeclared chain: %q", toks)
		}
		for i := 2; i < len(toks); i++ {
			tok := toks[i]
			switch toks[i-1] {
			case "--comment":
				if !commentRE.MatchString(tok) {
					t.Fatalf("comment %q is not one kube-proxy writes (rule %q)", tok, toks)
				}
				continue
			case "-j":
				if !declared[tok] && !targets[tok] {
					t.Fatalf("jump to unknown target %q", tok)
				}
			case "--to-destination":
				if !endpoint.MatchString(tok) {
					t.Fatalf("DNAT to %q", tok)
				}
			}
			if !tokenRE.MatchString(tok) {
				t.Fatalf("token %q of rule %q", tok, toks)
			}
		}
	}
}

// render runs the pipeline on manifests; ok is false when the input is
// refused (which is fine: it must then produce no output at all).
func render(t *testing.T, data []byte, knobs byte) (outs []string, ok bool) {
	in, err := compiler.Load(compiler.LoadOptions{Paths: []string{"-"}, Stdin: bytes.NewReader(data), MaxDocuments: 200})
	if err != nil {
		return nil, false
	}
	if _, err := compiler.Normalize(in); err != nil {
		return nil, false
	}
	family := v1.IPv4Protocol
	if knobs&1 != 0 {
		family = v1.IPv6Protocol
	}
	plan, _, err := compiler.Build(in, compiler.Options{Family: family, NodeName: "node-a", NodeIPs: []string{"192.168.0.2", "fd00::2"}, NodeAddresses: []string{"10.0.0.5"}, Zone: "a"})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	det, _ := compiler.NewLocalDetector(family, "", []string{"10.244.0.0/16", "fd00:244::/64"}, "")
	if knobs&2 != 0 {
		det = compiler.LocalDetector{Mode: "InterfaceNamePrefix", Value: "veth"}
	}
	var npa []string
	if knobs&4 != 0 {
		npa = []string{"127.0.0.0/8", "192.168.0.0/24", "fd00::/64"}
	}
	s := Settings{
		MasqueradeAll:         knobs&8 != 0,
		MasqueradeBit:         int(knobs>>4) * 2,
		LocalDetector:         det,
		NodePortAddresses:     compiler.ResolveNodePortAddresses(family, npa),
		LocalhostNodePorts:    knobs&16 == 0,
		NFAcct:                knobs&32 != 0,
		ConntrackTCPBeLiberal: knobs&64 != 0,
	}
	for _, view := range []View{ViewSave, ViewRestore} {
		s.View = view
		out, err := Render(plan, s)
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		again, _ := Render(plan, s)
		if again != out {
			t.Fatal("Render is not deterministic")
		}
		outs = append(outs, out)
	}
	return outs, true
}

func FuzzRender(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add([]byte(s), byte(i))
	}
	files, _ := filepath.Glob("../../golden/*/input.yaml")
	for i, file := range files {
		if data, err := os.ReadFile(file); err == nil && len(data) < 32<<10 {
			f.Add(data, byte(i*37))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, knobs byte) {
		outs, ok := render(t, data, knobs)
		if !ok {
			return
		}
		for _, out := range outs {
			checkOutput(t, out)
		}
	})
}

// TestHostileSeedsAreRefused: every seed built to inject text is refused
// by validation (nothing is rendered), and the ordinary ones render.
func TestHostileSeedsAreRefused(t *testing.T) {
	for i, s := range fuzzSeeds {
		_, ok := render(t, []byte(s), 0)
		hostile := i >= 2
		if ok == hostile {
			t.Errorf("seed %d: rendered %t, want %t", i, ok, !hostile)
		}
	}
}

// TestSeedOutputsLoadInTheKernel runs iptables-restore --test, in a network
// namespace of its own, on the outputs of the seeds and golden inputs (root
// and iptables-restore needed).
func TestSeedOutputsLoadInTheKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skip("no iptables-restore")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	inputs := append([]string(nil), fuzzSeeds...)
	files, _ := filepath.Glob("../../golden/*/input.yaml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			inputs = append(inputs, string(data))
		}
	}
	n := 0
	for i, in := range inputs {
		for _, knobs := range []byte{0, 1 | 2 | 4 | 8 | 16 | 64} {
			outs, ok := render(t, []byte(in), knobs)
			if !ok {
				continue
			}
			for _, out := range outs {
				cmd := exec.Command("unshare", "-n", "iptables-restore", "--test")
				if knobs&1 != 0 {
					cmd = exec.Command("unshare", "-n", "ip6tables-restore", "--test")
				}
				cmd.Stdin = strings.NewReader(out)
				if msg, err := cmd.CombinedOutput(); err != nil {
					if bytes.Contains(msg, []byte("Could not fetch rule set generation id")) || bytes.Contains(msg, []byte("unshare failed")) {
						t.Skipf("cannot run iptables-restore here: %s", msg)
					}
					t.Fatalf("input %d, knobs %d: iptables-restore --test: %v\n%s\n%s", i, knobs, err, msg, numbered(out))
				}
				n++
			}
		}
	}
	t.Logf("%d outputs loaded", n)
}

func numbered(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(s, "\n") {
		fmt.Fprintf(&b, "%4d %s\n", i+1, l)
	}
	return b.String()
}
