// Package diff runs one input through svc2rules (in process, through the same
// code path as `svc2rules compile`) and through kube-proxy (the oracle) and
// compares the outputs per backend with the main module's internal/canon,
// which frees only the order kube-proxy itself leaves random.
package diff

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/svc2rules/svc2rules/internal/canon"
	"github.com/svc2rules/svc2rules/internal/cli"

	"github.com/svc2rules/svc2rules/conformance/oracle"
)

// Kind of a comparison outcome.
type Kind string

const (
	Equal          Kind = "equal"
	Differ         Kind = "differ"
	Svc2rulesError Kind = "svc2rules-error" // svc2rules rejected what kube-proxy accepts
	OracleError    Kind = "kube-proxy-error"
	BothError      Kind = "both-rejected"
	NotImplemented Kind = "not-implemented"
)

// Outcome is the result of comparing one backend on one input.
type Outcome struct {
	Backend string
	Kind    Kind
	Part    string // which output differs: "iptables save", "iptables restore", "nft", "ipvs ipset", ...
	Detail  string // the diff or error text
}

// Failed reports whether the outcome is a conformance failure.
func (o Outcome) Failed() bool {
	return o.Kind == Differ || o.Kind == Svc2rulesError || o.Kind == OracleError
}

// Signature identifies the kind of failure (for shrinking: a smaller input
// must fail the same way).
func (o Outcome) Signature() string { return o.Backend + "/" + string(o.Kind) + "/" + o.Part }

// Svc2rules compiles input with svc2rules' compile flags args plus extra
// (e.g. --backend=nft) and returns the output.
func Svc2rules(args []string, input []byte, extra ...string) (string, error) {
	o := cli.DefaultCompileOptions()
	fs := pflag.NewFlagSet("compile", pflag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	o.AddFlags(fs)
	all := append(append(append([]string{}, args...), extra...), "--filename=-")
	if err := fs.Parse(all); err != nil {
		return "", fmt.Errorf("svc2rules flags %q: %v", all, err)
	}
	res, err := cli.Compile(o, bytes.NewReader(input))
	if err != nil {
		return "", err
	}
	return res.Output, nil
}

func notImplemented(err error) bool {
	return err != nil && strings.Contains(err.Error(), "not implemented")
}

// Implemented reports whether svc2rules implements backend (it compiles an
// empty input without a "not implemented" error).
func Implemented(backend string) (bool, error) {
	_, err := Svc2rules(nil, []byte("# empty\n"), "--backend="+backend)
	if notImplemented(err) {
		return false, err
	}
	return true, nil
}

// Compare compiles input with settings s for backend with both tools and
// compares the results.
func Compare(backend string, s *oracle.Settings, input []byte) Outcome {
	args := s.Args()
	out := Outcome{Backend: backend}
	type part struct {
		name  string
		extra []string
		view  string
		cmp   func(want, got string) (bool, string, error)
		ipvs  string // ipvs section
	}
	var parts []part
	switch backend {
	case "iptables":
		parts = []part{
			{name: "iptables save", extra: []string{"--iptables-view=save"}, view: "save", cmp: canon.IPTables},
			{name: "iptables restore", extra: []string{"--iptables-view=restore"}, view: "restore", cmp: canon.IPTables},
		}
	case "nft":
		parts = []part{{name: "nft", cmp: canon.NFT}}
	case "ipvs":
		for _, sec := range canon.IPVSSections {
			sec := sec
			parts = append(parts, part{name: "ipvs " + sec, extra: []string{"--ipvs-section=" + sec}, view: "save", ipvs: sec,
				cmp: func(w, g string) (bool, string, error) { return canon.IPVSSection(sec, w, g) }})
		}
	default:
		out.Kind, out.Detail = OracleError, "unknown backend "+backend
		return out
	}
	oracleOut := map[string]string{}
	for _, p := range parts {
		got, serr := Svc2rules(args, input, append([]string{"--backend=" + backend}, p.extra...)...)
		if notImplemented(serr) {
			out.Kind, out.Detail = NotImplemented, serr.Error()
			return out
		}
		want, ok := oracleOut[p.view]
		var oerr error
		if !ok {
			var res *oracle.Result
			res, oerr = oracle.Run(backend, s, input, oracle.RunOptions{IPTablesView: p.view})
			if oerr == nil {
				want = res.Output
				oracleOut[p.view] = want
			}
		}
		out.Part = p.name
		switch {
		case serr != nil && oerr != nil:
			out.Kind, out.Detail = BothError, fmt.Sprintf("svc2rules: %v\nkube-proxy: %v", serr, oerr)
			return out
		case serr != nil:
			out.Kind, out.Detail = Svc2rulesError, fmt.Sprintf("svc2rules rejected an input kube-proxy accepts: %v", serr)
			return out
		case oerr != nil:
			out.Kind, out.Detail = OracleError, fmt.Sprintf("kube-proxy failed where svc2rules succeeded: %v", oerr)
			return out
		}
		if p.ipvs != "" {
			secs, err := canon.SplitIPVSSections(want)
			if err != nil {
				out.Kind, out.Detail = OracleError, err.Error()
				return out
			}
			want = secs[p.ipvs]
		}
		eq, d, err := p.cmp(want, got)
		if err != nil {
			out.Kind, out.Detail = Differ, err.Error()
			return out
		}
		if !eq {
			out.Kind, out.Detail = Differ, d
			return out
		}
	}
	out.Kind, out.Part = Equal, ""
	return out
}
