package main

import (
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
)

const checkWarnOnly = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  clusterIP: 10.96.0.10
  ports:
  - {name: http, port: 80}
  - {name: grpc, port: 9000}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: demo
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.5]}]
`

const checkErrors = `apiVersion: v1
kind: Service
metadata: {name: api, namespace: demo}
spec:
  type: NodePort
  selector: {app: api}
  clusterIP: 10.96.0.20
  ports:
  - name: http
    port: 80
    nodePort: 80
`

func TestCheckExitCodes(t *testing.T) {
	dir := t.TempDir()
	clean := writeFile(t, dir, "clean.yaml", clusterIPService)
	warn := writeFile(t, dir, "warn.yaml", checkWarnOnly)
	bad := writeFile(t, dir, "bad.yaml", checkErrors)
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"clean", []string{"check", "-f", clean}, 0, "0 errors, 0 warnings, 0 infos in 2 objects (1 file)", ""},
		{"warnings", []string{"check", "-f", warn}, 0, "[unmatched-service-port]", ""},
		{"warnings fail", []string{"check", "-f", warn, "--fail-on-warn"}, 1, "1 warning", ""},
		{"errors", []string{"check", "-f", bad}, 2, bad + ":11: error: Service demo/api: spec.ports[0].nodePort: nodePort 80 is outside the node port range 30000-32767", ""},
		{"range flag", []string{"check", "-f", bad, "--service-node-port-range", "1-1000"}, 0, "0 errors", ""},
		{"errors win over fail-on-warn", []string{"check", "-f", bad, "-f", warn, "--fail-on-warn"}, 2, "1 error, 1 warning, 1 info", ""},
		{"directory", []string{"check", "-f", dir}, 2, "(3 files)", ""},
		{"stdin", []string{"check", "-f", "-"}, 0, "in 2 objects (1 file)", ""},
		{"missing file", []string{"check", "-f", dir + "/nope.yaml"}, 2, "", "no such file"},
		{"no input", []string{"check"}, 2, "", "no input"},
		{"bad format", []string{"check", "-f", clean, "-o", "yaml"}, 2, "", "-o must be one of"},
		{"bad range", []string{"check", "-f", clean, "--service-node-port-range", "5"}, 2, "", "--service-node-port-range"},
		{"bad cidr", []string{"check", "-f", clean, "--service-cidrs", "10.0.0.0/99"}, 2, "", "--service-cidrs"},
		{"document limit", []string{"check", "-f", dir, "--max-documents", "2"}, 2, "", "more than 2 documents"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdin := ""
			if tc.name == "stdin" {
				stdin = clusterIPService
			}
			r := runCmd(t, stdin, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestCheckFormats(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", checkErrors)
	warn := writeFile(t, dir, "warn.yaml", checkWarnOnly)
	for _, format := range []string{"text", "json", "sarif", "junit", "github"} {
		t.Run(format, func(t *testing.T) {
			r := runCmd(t, "", "check", "-f", bad, "-f", warn, "-o", format)
			if r.code != 2 {
				t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
			}
			switch format {
			case "json":
				var v struct {
					Findings []struct{ Rule, Severity, File string }
					Summary  struct{ Errors, Warnings int }
				}
				if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
					t.Fatal(err)
				}
				if v.Summary.Errors != 1 || v.Summary.Warnings != 1 || v.Findings[1].Rule != "node-port-out-of-range" || v.Findings[1].File != bad {
					t.Errorf("%+v", v)
				}
			case "sarif":
				var v struct {
					Version string
					Runs    []struct {
						Results []struct {
							RuleID    string
							Level     string
							Locations []struct {
								PhysicalLocation struct {
									ArtifactLocation struct{ URI string }
									Region           struct{ StartLine int }
								}
							}
						}
					}
				}
				if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
					t.Fatal(err)
				}
				res := v.Runs[0].Results[1]
				if v.Version != "2.1.0" || res.RuleID != "node-port-out-of-range" || res.Level != "error" || res.Locations[0].PhysicalLocation.Region.StartLine != 11 {
					t.Errorf("%+v", v)
				}
			case "junit":
				var v struct {
					Tests    int `xml:"tests,attr"`
					Failures int `xml:"failures,attr"`
				}
				if err := xml.Unmarshal([]byte(r.stdout), &v); err != nil {
					t.Fatal(err)
				}
				if v.Tests != 3 || v.Failures != 1 {
					t.Errorf("tests %d failures %d\n%s", v.Tests, v.Failures, r.stdout)
				}
			case "github":
				if !strings.Contains(r.stdout, "::error file="+bad+",line=11,title=svc2rules node-port-out-of-range::Service demo/api: spec.ports[0].nodePort: ") ||
					!strings.Contains(r.stdout, "::warning file="+warn+",line=8,title=svc2rules unmatched-service-port::") {
					t.Errorf("annotations:\n%s", r.stdout)
				}
			case "text":
				if !strings.Contains(r.stdout, "1 error, 1 warning, 1 info in 3 objects (2 files)") {
					t.Errorf("%s", r.stdout)
				}
			}
		})
	}
}

func TestCheckHelpDocumentsExitStatus(t *testing.T) {
	r := runCmd(t, "", "check", "--help")
	for _, want := range []string{"Exit status: 0", "--fail-on-warn", "--service-node-port-range string", "text, json, sarif, junit, github", "--node-name"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, r.stdout)
		}
	}
}
