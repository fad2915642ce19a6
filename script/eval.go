package script

// evalInt evaluates a numeric expression: numbers, symbols, A|B, htons(N).
func evalInt(e *Expr) (int64, bool) {
	if e == nil {
		return 0, false
	}
	switch e.Kind {
	case ExprInt:
		return e.Int, true
	case ExprSymbol:
		v, ok := symbols[e.Name]
		return v, ok
	case ExprOr:
		var v int64
		for _, x := range e.Elems {
			n, ok := evalInt(x)
			if !ok {
				return 0, false
			}
			v |= n
		}
		return v, true
	case ExprCall:
		if (e.Name == "htons" || e.Name == "htonl" || e.Name == "ntohs" || e.Name == "ntohl") && len(e.Elems) == 1 {
			return evalInt(e.Elems[0])
		}
	case ExprArray:
		if len(e.Elems) == 1 {
			return evalInt(e.Elems[0])
		}
	}
	return 0, false
}

// structField returns the value of a named field of a struct literal.
func structField(e *Expr, names ...string) (*Expr, bool) {
	if e == nil || e.Kind != ExprStruct {
		return nil, false
	}
	for _, f := range e.Fields {
		for _, n := range names {
			if f.Name == n {
				return f.Value, true
			}
		}
	}
	return nil, false
}

// argInt reads argument i as a number.
func argInt(sc *Syscall, i int) (int64, bool) {
	if i >= len(sc.Args) {
		return 0, false
	}
	return evalInt(sc.Args[i])
}

// portOf reads the port of a sockaddr literal such as
// {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}.
func portOf(e *Expr) (uint16, bool) {
	v, ok := structField(e, "sin_port", "sin6_port")
	if !ok {
		return 0, false
	}
	n, ok := evalInt(v)
	if !ok || n <= 0 || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// dataLen reads the length argument of write/read/send/recv.
func dataLen(sc *Syscall) (int, bool) {
	n, ok := argInt(sc, 2)
	if !ok || n < 0 || n > 1<<20 {
		return 0, false
	}
	return int(n), true
}

func argText(sc *Syscall, i int) string {
	if i < len(sc.Args) {
		return sc.Args[i].String()
	}
	return "(missing)"
}

// optName names a socket option argument for messages.
func optName(e *Expr) string {
	if e.Kind == ExprSymbol {
		return e.Name
	}
	return e.String()
}
