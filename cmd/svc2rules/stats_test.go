package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestCompileStats: --stats prints the plan, the tables and the phases to
// stderr and leaves stdout exactly as without it.
func TestCompileStats(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		tables []string
	}{
		{[]string{"-b", "iptables"}, []string{"table filter: ", "table nat: "}},
		{[]string{"-b", "iptables", "--iptables-view", "restore"}, []string{"table filter: ", "table nat: "}},
		{[]string{"-b", "nft"}, []string{"table ip kube-proxy: "}},
		{[]string{"-b", "nft", "--nft-view", "transaction"}, []string{"table ip kube-proxy: "}},
		{[]string{"-b", "ipvs"}, []string{"table ipset: ", "table ipvs: 1 virtual servers, 1 real servers, 2 lines", "table kube-ipvs0: 1 addresses, 1 lines", "table ipset: 17 sets, 2 entries, 19 lines", "table nat: ", "table filter: "}},
		{[]string{"-b", "ipvs", "--ipvs-section", "ipvsadm"}, []string{"table ipvs: 1 virtual servers, 1 real servers, 2 lines"}},
		{[]string{"-b", "userspace", "--node-ip", "192.168.0.2"}, []string{"table nat: "}},
	} {
		args := append([]string{"compile", "-f", "-", "--node-name", "node-1"}, tc.args...)
		plain := runCmd(t, clusterIPService, args...)
		r := runCmd(t, clusterIPService, append(args, "--stats")...)
		if r.code != 0 || plain.code != 0 {
			t.Fatalf("%v: exit %d / %d: %s", tc.args, r.code, plain.code, r.stderr)
		}
		if r.stdout != plain.stdout {
			t.Errorf("%v: --stats changed stdout", tc.args)
		}
		for _, want := range append([]string{"svc2rules: stats: plan: 1 services, 1 service ports, 1 endpoints\n"}, tc.tables...) {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, want, r.stderr)
			}
		}
		lines := strings.Count(plain.stdout, "\n")
		if want := "svc2rules: stats: output: " + itoa(lines) + " lines, " + itoa(len(plain.stdout)) + " bytes\n"; !strings.Contains(r.stderr, want) {
			t.Errorf("%v: stderr lacks %q:\n%s", tc.args, want, r.stderr)
		}
		if !regexp.MustCompile(`svc2rules: stats: time: load [0-9.]+s, materialize [0-9.]+s, build [0-9.]+s, render [0-9.]+s, write [0-9.]+s, total [0-9.]+s\n`).MatchString(r.stderr) {
			t.Errorf("%v: no phase times:\n%s", tc.args, r.stderr)
		}
	}
}

func itoa(n int) string {
	s := ""
	for {
		s = string(rune('0'+n%10)) + s
		n /= 10
		if n == 0 {
			return s
		}
	}
}
