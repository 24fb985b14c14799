package nft

import (
	"runtime"
	"strconv"
	"strings"

	"sigs.k8s.io/knftables"
)

// op is one operation of a transaction, kept in order so that the text can
// be written in one pass (opsText) rather than through knftables' fmt-based
// writer into a growing buffer.
type op struct {
	verb verb
	obj  knftables.Object
	// key is an element's key when ensureElem has joined it (dump view).
	key string
}

// to adds the operation to a knftables transaction (which checks it).
func (o op) to(tx *knftables.Transaction) {
	switch o.verb {
	case verbAdd:
		tx.Add(o.obj)
	case verbFlush:
		tx.Flush(o.obj)
	case verbDelete:
		tx.Delete(o.obj)
	}
}

func (v verb) String() string {
	switch v {
	case verbFlush:
		return "flush"
	case verbDelete:
		return "delete"
	}
	return "add"
}

// opsText writes ops as knftables' Transaction.String() does for a
// transaction of the given family and table, byte for byte: the rules,
// elements and plain chains that make up nearly all of a large transaction
// directly, every other operation through knftables itself (newTx gives an
// empty transaction of the same table). The equality is tested against
// knftables on the golden corpus and on generated plans (write_test.go).
//
// A large transaction is written in two halves at once, one per core when
// there are two: each line depends on its operation only, so the halves
// joined are the text written in one go.
func opsText(ops []op, family knftables.Family, table string, newTx func() *knftables.Transaction) string {
	if len(ops) < parallelTextOps || runtime.GOMAXPROCS(0) < 2 {
		return writeOps(ops, family, table, newTx)
	}
	mid := len(ops) / 2
	var second string
	done := make(chan struct{})
	go func() {
		defer close(done)
		second = writeOps(ops[mid:], family, table, newTx)
	}()
	// The first half goes into a buffer with room for the second, so that
	// joining them copies the second half only.
	var b strings.Builder
	b.Grow(textSize(ops, table))
	writeOpsTo(&b, ops[:mid], family, table, newTx)
	<-done
	b.WriteString(second)
	return b.String()
}

// parallelTextOps is the size from which opsText writes in two halves.
const parallelTextOps = 20000

// writeOps is opsText in one goroutine.
func writeOps(ops []op, family knftables.Family, table string, newTx func() *knftables.Transaction) string {
	var b strings.Builder
	b.Grow(textSize(ops, table))
	writeOpsTo(&b, ops, family, table, newTx)
	return b.String()
}

// textSize is an upper bound of the length of ops' text (nearly exact for
// rules and elements).
func textSize(ops []op, table string) int {
	size := 0
	for _, o := range ops {
		size += 48 + len(table)
		switch x := o.obj.(type) {
		case *knftables.Rule:
			size += len(x.Chain) + len(x.Rule)
			if x.Comment != nil {
				size += len(*x.Comment) + 12
			}
		case *knftables.Element:
			size += len(x.Set) + len(x.Map)
			for _, k := range x.Key {
				size += len(k) + 3
			}
			for _, k := range x.Value {
				size += len(k) + 3
			}
			if x.Comment != nil {
				size += len(*x.Comment) + 12
			}
		case *knftables.Chain:
			size += len(x.Name)
		case *knftables.Set:
			size += len(x.Name) + len(x.Type) + 64
			if x.Comment != nil {
				size += len(*x.Comment) + 12
			}
		default:
			size += 128
		}
	}
	return size
}

// writeOpsTo is writeOps into b.
func writeOpsTo(b *strings.Builder, ops []op, family knftables.Family, table string, newTx func() *knftables.Transaction) {
	prefix := make([]string, 3)
	for v := range prefix {
		prefix[v] = " " + string(family) + " " + table + " "
	}
	var scratch []byte
	for _, o := range ops {
		verb := o.verb.String()
		switch x := o.obj.(type) {
		case *knftables.Rule:
			if x.Family != "" || x.Table != "" || x.Index != nil || x.Handle != nil {
				break
			}
			b.WriteString(verb)
			b.WriteString(" rule")
			b.WriteString(prefix[o.verb])
			b.WriteString(x.Chain)
			if o.verb == verbAdd {
				b.WriteByte(' ')
				b.WriteString(x.Rule)
				if x.Comment != nil {
					b.WriteString(" comment ")
					scratch = strconv.AppendQuote(scratch[:0], *x.Comment)
					b.Write(scratch)
				}
			}
			b.WriteByte('\n')
			continue
		case *knftables.Element:
			if x.Family != "" || x.Table != "" {
				break
			}
			b.WriteString(verb)
			b.WriteString(" element")
			b.WriteString(prefix[o.verb])
			if x.Set != "" {
				b.WriteString(x.Set)
			} else {
				b.WriteString(x.Map)
			}
			b.WriteString(" { ")
			writeJoined(b, x.Key)
			if o.verb == verbAdd {
				if x.Comment != nil {
					b.WriteString(" comment ")
					scratch = strconv.AppendQuote(scratch[:0], *x.Comment)
					b.Write(scratch)
				}
				if len(x.Value) != 0 {
					b.WriteString(" : ")
					writeJoined(b, x.Value)
				}
			}
			b.WriteString(" }\n")
			continue
		case *knftables.Set:
			// The per-endpoint affinity sets: add with a type, flags, a
			// timeout and a comment at most.
			if o.verb != verbAdd || x.Family != "" || x.Table != "" || x.Handle != nil || x.Type == "" || x.TypeOf != "" ||
				x.GCInterval != nil || x.Size != nil || x.Policy != nil || x.AutoMerge != nil {
				break
			}
			b.WriteString("add set")
			b.WriteString(prefix[o.verb])
			b.WriteString(x.Name)
			b.WriteString(" { type ")
			b.WriteString(x.Type)
			b.WriteString(" ;")
			if len(x.Flags) != 0 {
				b.WriteString(" flags ")
				for i, f := range x.Flags {
					if i > 0 {
						b.WriteByte(',')
					}
					b.WriteString(string(f))
				}
				b.WriteString(" ;")
			}
			if x.Timeout != nil {
				b.WriteString(" timeout ")
				scratch = strconv.AppendInt(scratch[:0], int64(x.Timeout.Seconds()), 10)
				b.Write(scratch)
				b.WriteString("s ;")
			}
			if x.Comment != nil {
				b.WriteString(" comment ")
				scratch = strconv.AppendQuote(scratch[:0], *x.Comment)
				b.Write(scratch)
				b.WriteString(" ;")
			}
			b.WriteString(" }\n")
			continue
		case *knftables.Chain:
			if x.Family != "" || x.Table != "" || x.Handle != nil || (o.verb == verbAdd && (x.Type != nil || x.Comment != nil)) {
				break
			}
			b.WriteString(verb)
			b.WriteString(" chain")
			b.WriteString(prefix[o.verb])
			b.WriteString(x.Name)
			b.WriteByte('\n')
			continue
		}
		// Anything else: knftables writes it.
		tx := newTx()
		o.to(tx)
		b.WriteString(tx.String())
	}
}

// writeJoined writes strings.Join(parts, " . ").
func writeJoined(b *strings.Builder, parts []string) {
	for i, p := range parts {
		if i > 0 {
			b.WriteString(" . ")
		}
		b.WriteString(p)
	}
}

// knftablesText is the reference for opsText: the operations run through
// one knftables transaction and its String().
func knftablesText(ops []op, tx *knftables.Transaction) string {
	for _, o := range ops {
		o.to(tx)
	}
	return tx.String()
}
