package explain_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/cli"
	"github.com/svc2rules/svc2rules/internal/explain"
)

// The manifests of the trace tests: node1 in zone a, a bit of everything.
var baseFlags = []string{
	"-f", "../trace/testdata/services.yaml", "--node-name", "node1", "--node-ip", "192.168.0.2,fd00:192::2",
	"--cluster-cidr", "10.244.0.0/16,fd00:10:244::/48", "--service-cidrs", "10.96.0.0/16,fd00:96::/112",
}

func opts(t *testing.T, backend string, extra ...string) cli.CompileOptions {
	t.Helper()
	o := cli.DefaultCompileOptions()
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(append(append([]string{"--backend", backend}, baseFlags...), extra...)); err != nil {
		t.Fatal(err)
	}
	return o
}

func report(t *testing.T, backend string, services []string, extra ...string) *explain.Report {
	t.Helper()
	r, err := explain.Run(explain.Options{Compile: opts(t, backend, extra...), Services: services})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func port(t *testing.T, r *explain.Report, spn string) explain.Port {
	t.Helper()
	for _, p := range r.Ports {
		if p.SPN == spn {
			return p
		}
	}
	t.Fatalf("no %s in the report", spn)
	return explain.Port{}
}

func endpoint(t *testing.T, p explain.Port, ep string) explain.Endpoint {
	t.Helper()
	for _, e := range p.Endpoints {
		if e.Endpoint == ep {
			return e
		}
	}
	t.Fatalf("%s has no endpoint %s", p.SPN, ep)
	return explain.Endpoint{}
}

// TestWhy: the reason given for every endpoint left out, per traffic class.
func TestWhy(t *testing.T) {
	cases := []struct {
		backend, spn, ep string
		external         bool
		used             bool
		why              string
	}{
		{"iptables", "t/web:http", "10.244.2.99:8080", false, false, "not ready"},
		{"iptables", "t/web:http", "10.244.1.10:8080", false, true, "ready"},
		{"iptables", "t/lb:http", "10.244.2.30:8080", true, false, "on node node2, not this one (externalTrafficPolicy Local)"},
		{"iptables", "t/lb:http", "10.244.2.30:8080", false, true, "ready"},
		{"iptables", "t/lb:http", "10.244.1.30:8080", true, true, "ready, on this node"},
		{"iptables", "t/itp:http", "10.244.2.50:8080", false, false, "on node node2, not this one (internalTrafficPolicy Local)"},
		{"iptables", "t/term:http", "10.244.1.80:8080", false, true, "serving while terminating: used because no endpoint is ready (fallback)"},
		{"iptables", "t/term:http", "10.244.2.80:8080", false, false, "terminating and no longer serving"},
		{"iptables", "t/zoned:http", "10.244.2.90:8080", false, false, `topology: hinted for zone(s) b, not this node's zone "a"`},
		{"iptables", "t/zoned:http", "10.244.2.91:8080", false, true, "ready, hinted for this node's zone"},
		{"ipvs", "t/remote:http", "10.244.2.40:8080", true, true, "IPVS falls back to cluster endpoints"},
		{"nft", "t/remote:http", "10.244.2.40:8080", true, false, "externalTrafficPolicy Local"},
		{"userspace", "t/web:http", "10.244.2.99:8080", false, false, "not ready"},
		{"userspace", "t/zoned:http", "10.244.2.90:8080", false, true, "ready address of the Endpoints"},
	}
	for _, c := range cases {
		t.Run(c.backend+" "+c.spn+" "+c.ep, func(t *testing.T) {
			r := report(t, c.backend, nil, "--ip-family", "ipv4")
			e := endpoint(t, port(t, r, c.spn), c.ep)
			u := e.Internal
			if c.external {
				if e.External == nil {
					t.Fatal("no external use")
				}
				u = *e.External
			}
			if u.Used != c.used || !strings.Contains(u.Why, c.why) {
				t.Errorf("used=%v why=%q, want used=%v why containing %q", u.Used, u.Why, c.used, c.why)
			}
		})
	}
}

func TestTraffic(t *testing.T) {
	cases := []struct {
		backend, spn string
		external     bool
		verdict      string
		why          string
		shares       int
	}{
		{"iptables", "t/web:http", false, "load-balanced", "every ready endpoint", 3},
		{"iptables", "t/empty:http", false, "REJECT", "no usable endpoint", 0},
		{"iptables", "t/empty:http", true, "REJECT", "no usable endpoint", 0},
		{"iptables", "t/remote:http", true, "DROP", "externalTrafficPolicy Local and no ready", 0},
		{"iptables", "t/itp:http", false, "DROP", "internalTrafficPolicy Local", 0},
		{"nft", "t/lb:http", true, "load-balanced", "externalTrafficPolicy Local: only endpoints on node1", 1},
		{"ipvs", "t/remote:http", true, "load-balanced", "IPVS falls back", 1},
		{"ipvs", "t/empty:http", false, "REJECT", "no real server", 0},
		{"ipvs", "t/itp:http", false, "REJECT", "no real server", 0},
		{"userspace", "t/web:assoc", false, "NO-MATCH", "SCTP", 0},
		{"userspace", "t/empty:http", false, "REJECT", "accepts the connection and closes it", 0},
		{"userspace", "t/lb:http", true, "load-balanced", "ignores policies", 2},
	}
	for _, c := range cases {
		t.Run(c.backend+" "+c.spn, func(t *testing.T) {
			p := port(t, report(t, c.backend, nil, "--ip-family", "ipv4"), c.spn)
			tr := p.Internal
			if c.external {
				tr = *p.External
			}
			if tr.Verdict != c.verdict || !strings.Contains(tr.Why, c.why) || len(tr.Shares) != c.shares {
				t.Errorf("%s %q with %d shares, want %s %q with %d", tr.Verdict, tr.Why, len(tr.Shares), c.verdict, c.why, c.shares)
			}
			sum := 0.0
			for _, s := range tr.Shares {
				sum += s.Weight
			}
			if c.shares > 0 && (sum < 0.999999 || sum > 1.000001) {
				t.Errorf("shares sum to %v", sum)
			}
		})
	}
}

func TestMasqueradeAndFirewall(t *testing.T) {
	p := port(t, report(t, "iptables", []string{"t/lb"}), "t/lb:http")
	if !strings.Contains(p.External.Firewall, "only from 198.51.100.0/24") {
		t.Errorf("firewall %q", p.External.Firewall)
	}
	if !strings.HasPrefix(p.External.Masquerade, "not masqueraded") {
		t.Errorf("ETP Local external masquerade %q", p.External.Masquerade)
	}
	if !strings.Contains(p.Internal.Masquerade, "from outside 10.244.0.0/16") {
		t.Errorf("internal masquerade %q", p.Internal.Masquerade)
	}
	p = port(t, report(t, "iptables", []string{"t/web:http"}, "--masquerade-all"), "t/web:http")
	if !strings.Contains(p.Internal.Masquerade, "--masquerade-all") {
		t.Errorf("masquerade-all: %q", p.Internal.Masquerade)
	}
	p = port(t, report(t, "iptables", []string{"t/web:http"}, "--cluster-cidr", ""), "t/web:http")
	if !strings.Contains(p.Internal.Masquerade, "no local-traffic detector") {
		t.Errorf("no detector: %q", p.Internal.Masquerade)
	}
}

// TestQueries: service and port selection, families.
func TestQueries(t *testing.T) {
	for _, c := range []struct {
		q    []string
		spns []string
	}{
		{[]string{"t/web"}, []string{"t/web:assoc", "t/web:dns", "t/web:http"}},
		{[]string{"t/web:http"}, []string{"t/web:http"}},
		{[]string{"t/web:53"}, []string{"t/web:dns"}},
		{[]string{"t/web:3868/sctp"}, []string{"t/web:assoc"}},
		{[]string{"t/web6"}, []string{"t/web6:http"}},
		{[]string{"t/np", "t/itp:http"}, []string{"t/itp:http", "t/np:http"}},
	} {
		r := report(t, "iptables", c.q)
		var got []string
		for _, p := range r.Ports {
			got = append(got, p.SPN)
		}
		if strings.Join(got, " ") != strings.Join(c.spns, " ") {
			t.Errorf("%v: got %v, want %v", c.q, got, c.spns)
		}
	}
	if _, err := explain.Run(explain.Options{Compile: opts(t, "iptables"), Services: []string{"t/nope"}}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown service: %v", err)
	}
	if _, err := explain.Run(explain.Options{Compile: opts(t, "iptables"), Services: []string{"t/web6"}, Families: []string{"ipv4"}}); err == nil {
		t.Error("an IPv6-only service explained for IPv4")
	}
}

// TestObjectsFound: every object kube-proxy writes for a service port is
// listed, by its hashed name, on every golden scenario (the names are
// recomputed from upstream's formulas, so a wrong formula shows here).
func TestObjectsFound(t *testing.T) {
	for _, dir := range scenarios(t) {
		for _, backend := range []string{"iptables", "nft", "ipvs"} {
			t.Run(filepath.Base(dir)+"/"+backend, func(t *testing.T) {
				o := goldenOpts(t, dir)
				o.Backend = backend
				res, err := cli.Compile(o, nil)
				if err != nil {
					t.Fatal(err)
				}
				fam := strings.ToLower(string(res.Plan.Family))
				r, err := explain.Run(explain.Options{Compile: o, Families: []string{fam}})
				if err != nil {
					if strings.Contains(err.Error(), "no service port") {
						t.Skip()
					}
					t.Fatal(err)
				}
				for i, sp := range res.Plan.ServicePorts {
					p := r.Ports[i]
					if p.SPN != sp.SPN {
						t.Fatalf("port %d: %s, plan %s", i, p.SPN, sp.SPN)
					}
					checkObjects(t, backend, sp, p)
				}
			})
		}
	}
}

func checkObjects(t *testing.T, backend string, sp *compiler.ServicePort, p explain.Port) {
	t.Helper()
	has := func(prefix string) bool {
		for _, o := range p.Objects {
			if o.Kind != "elements" && strings.HasPrefix(o.Name, prefix) && (len(o.Rules) > 0 || o.Kind == "set") {
				return true
			}
		}
		return false
	}
	count := func(prefix string) int {
		n := 0
		for _, o := range p.Objects {
			if strings.HasPrefix(o.Name, prefix) {
				n++
			}
		}
		return n
	}
	want := map[string]bool{}
	switch backend {
	case "iptables":
		want["KUBE-SVC-"] = sp.UsesClusterChain()
		want["KUBE-SVL-"] = sp.UsesLocalChain()
		want["KUBE-EXT-"] = sp.UsesExternalChain()
		if n := count("KUBE-SEP-"); n != len(sp.ReachableEndpoints) {
			t.Errorf("%s: %d KUBE-SEP chains listed, %d reachable endpoints", sp.SPN, n, len(sp.ReachableEndpoints))
		}
	case "nft":
		want["service-"] = sp.UsesClusterChain()
		want["local-"] = sp.UsesLocalChain()
		want["external-"] = sp.UsesExternalChain()
		want["firewall-"] = len(sp.LoadBalancerVIPs) > 0 && len(sp.LoadBalancerSourceRanges) > 0
		aff := 0
		if sp.SessionAffinityClientIP {
			aff = len(sp.ReachableEndpoints)
		}
		if n := count("affinity-"); n != aff {
			t.Errorf("%s: %d affinity sets listed, want %d", sp.SPN, n, aff)
		}
		if n := count("endpoint-"); n != aff {
			t.Errorf("%s: %d endpoint chains listed, want %d", sp.SPN, n, aff)
		}
	case "ipvs":
		if !has(strings.ToUpper(string(sp.Protocol)) + " " + hostPortOf(sp.ClusterIP, sp.Port)) {
			t.Errorf("%s: no virtual server for the cluster IP in %v", sp.SPN, names(p))
		}
	}
	for prefix, w := range want {
		if has(prefix) != w {
			t.Errorf("%s: object %s... listed: %v, want %v (objects %v)", sp.SPN, prefix, has(prefix), w, names(p))
		}
	}
}

func hostPortOf(ip string, port int32) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + itoa(port)
	}
	return ip + ":" + itoa(port)
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func names(p explain.Port) []string {
	var out []string
	for _, o := range p.Objects {
		out = append(out, o.Name)
	}
	return out
}

func TestRender(t *testing.T) {
	r := report(t, "nft", []string{"t/sticky", "t/lb"})
	var b bytes.Buffer
	if err := explain.Write(&b, "json", r, false); err != nil {
		t.Fatal(err)
	}
	var back explain.Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Ports) != 2 || back.Ports[1].SPN != "t/sticky:http" {
		t.Errorf("json round trip: %+v", back.Ports)
	}
	b.Reset()
	if err := explain.Write(&b, "text", r, true); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"t/sticky:http TCP (IPv4)", "sessionAffinity ClientIP, 10800s", "affinity-", "| add rule ip kube-proxy service-",
		"firewall:   load balancer IP traffic only from 198.51.100.0/24", "external: not used: on node node2",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if err := explain.Write(&b, "yaml", r, false); err == nil {
		t.Error("unknown format accepted")
	}
}
