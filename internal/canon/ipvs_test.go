package canon

import (
	"strings"
	"testing"
)

const ipvsSample = `### ipvsadm-save -n
-A -t 10.96.0.10:80 -s rr
-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1
-a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 1
### ipset save
create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536
add KUBE-CLUSTER-IP 10.96.0.10,tcp:80
### kube-ipvs0 addresses
10.96.0.10/32
### iptables-save
*filter
:KUBE-IPVS-OUT-FILTER - [0:0]
-A KUBE-IPVS-OUT-FILTER -s 5.6.7.8 -m ipvs --vaddr 5.6.7.8 --vproto tcp --vport 80 -j DROP
-A KUBE-IPVS-OUT-FILTER -s 1.2.3.4 -m ipvs --vaddr 1.2.3.4 --vproto tcp --vport 80 -j DROP
COMMIT
`

func TestSplitIPVSSections(t *testing.T) {
	secs, err := SplitIPVSSections(ipvsSample)
	if err != nil {
		t.Fatal(err)
	}
	if len(secs) != 4 {
		t.Fatalf("got %d sections, want 4", len(secs))
	}
	if got, want := secs["addresses"], "10.96.0.10/32\n"; got != want {
		t.Errorf("addresses = %q, want %q", got, want)
	}
	if !strings.HasPrefix(secs["iptables"], "*filter\n") || !strings.HasSuffix(secs["iptables"], "COMMIT\n") {
		t.Errorf("iptables section = %q", secs["iptables"])
	}
	if _, err := SplitIPVSSections("### nonsense\n"); err == nil {
		t.Error("unknown header accepted")
	}
}

func TestIPVSSection(t *testing.T) {
	secs, err := SplitIPVSSections(ipvsSample)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, section, got string
		equal              bool
	}{
		{"identical", "ipvsadm", secs["ipvsadm"], true},
		{"reordered real servers", "ipvsadm", "-A -t 10.96.0.10:80 -s rr\n-a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 1\n-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1\n", true},
		{"blank, comment and spacing", "ipset", "# sets\n\ncreate KUBE-CLUSTER-IP  hash:ip,port family inet hashsize 1024 maxelem 65536\nadd KUBE-CLUSTER-IP 10.96.0.10,tcp:80\n", true},
		{"other weight", "ipvsadm", strings.Replace(secs["ipvsadm"], "8080 -m -w 1\n-a", "8080 -m -w 0\n-a", 1), false},
		{"missing entry", "ipset", "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536\n", false},
		{"extra address", "addresses", "10.96.0.10/32\n10.96.0.11/32\n", false},
		{"out-filter is a set", "iptables", "*filter\n:KUBE-IPVS-OUT-FILTER - [0:0]\n-A KUBE-IPVS-OUT-FILTER -s 1.2.3.4 -m ipvs --vaddr 1.2.3.4 --vproto tcp --vport 80 -j DROP\n-A KUBE-IPVS-OUT-FILTER -s 5.6.7.8 -m ipvs --vaddr 5.6.7.8 --vproto tcp --vport 80 -j DROP\nCOMMIT\n", true},
		{"iptables rule missing", "iptables", "*filter\n:KUBE-IPVS-OUT-FILTER - [0:0]\n-A KUBE-IPVS-OUT-FILTER -s 1.2.3.4 -m ipvs --vaddr 1.2.3.4 --vproto tcp --vport 80 -j DROP\nCOMMIT\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			equal, diff, err := IPVSSection(tc.section, secs[tc.section], tc.got)
			if err != nil {
				t.Fatal(err)
			}
			if equal != tc.equal {
				t.Errorf("equal = %v, want %v; diff:\n%s", equal, tc.equal, diff)
			}
			if !equal && diff == "" {
				t.Error("no diff for unequal sections")
			}
		})
	}
	if _, _, err := IPVSSection("bogus", "", ""); err == nil {
		t.Error("unknown section accepted")
	}
	if _, _, err := IPVSSection("iptables", secs["iptables"], "-A FOO -j BAR\n"); err == nil {
		t.Error("unparsable iptables accepted")
	}
}
