package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func explainArgs(extra ...string) []string {
	return append(append([]string{"explain", "-f", "-"}, node...), extra...)
}

func TestExplainCommand(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"clusterip", explainArgs("demo/web"),
			[]string{"demo/web:http TCP (IPv4)", "cluster IP:      10.96.0.10:80", "internal traffic (cluster IP 10.96.0.10:80): load-balanced", "100%     10.244.1.5:8080", "nat KUBE-SVC-", "nat KUBE-SEP-"}},
		{"etp local without local endpoint", explainArgs("demo/shop:http"),
			[]string{"external traffic (NodePort 30080, load balancer IP 203.0.113.10:80): DROP", "externalTrafficPolicy Local and no ready", "external: not used: on node node2, not this one (externalTrafficPolicy Local)", "firewall:   load balancer IP traffic only from 198.51.100.0/24", "filter KUBE-EXTERNAL-SERVICES"}},
		{"all services", explainArgs(), []string{"demo/web:http", "demo/shop:http"}},
		{"port number", explainArgs("demo/shop:80"), []string{"demo/shop:http"}},
		{"nft", explainArgs("demo/web", "-b", "nft"), []string{"nft objects:", "service-", "elements  ip kube-proxy service-ips"}},
		{"ipvs", explainArgs("demo/shop", "-b", "ipvs"), []string{"virtual server TCP 203.0.113.10:80", "IPVS falls back to all cluster endpoints", "ipset entries KUBE-LOAD-BALANCER-SOURCE-CIDR"}},
		{"userspace", explainArgs("demo/shop", "-b", "userspace"), []string{"userspace proxy:", "proxy port:", "are ignored by the userspace mode"}},
		{"show rules", explainArgs("demo/web", "--show-rules"), []string{"| -A KUBE-SVC-", "| -A KUBE-SERVICES -m comment --comment \"demo/web:http cluster IP\""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCmd(t, traceManifests, c.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

func TestExplainCommandJSON(t *testing.T) {
	r := runCmd(t, traceManifests, explainArgs("demo/shop", "-o", "json", "--ip-family", "ipv4")...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rep struct {
		Backend      string
		ServicePorts []struct {
			ServicePortName string
			Internal        struct{ Verdict string }
			External        struct{ Verdict, Why string }
			Endpoints       []struct {
				Endpoint string
				External struct {
					Used bool
					Why  string
				}
			}
			Objects []struct{ Kind, Name string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if rep.Backend != "iptables" || len(rep.ServicePorts) != 1 {
		t.Fatalf("%+v", rep)
	}
	p := rep.ServicePorts[0]
	if p.ServicePortName != "demo/shop:http" || p.Internal.Verdict != "load-balanced" || p.External.Verdict != "DROP" || len(p.Endpoints) != 1 || p.Endpoints[0].External.Used || len(p.Objects) == 0 {
		t.Errorf("%+v", p)
	}
}

func TestExplainCommandErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"explain", "demo/web"}, 2, "no input"},
		{explainArgs("demo/nope"), 1, "not found"},
		{explainArgs("-o", "yaml"), 2, "-o must be"},
		{explainArgs("--ip-family", "ipv5"), 2, "--ip-family"},
		{explainArgs("-b", "bpf"), 2, "--backend"},
	} {
		r := runCmd(t, traceManifests, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, r.code, r.stderr, c.code, c.msg)
		}
	}
}
