package main

import (
	"embed"
	"io/fs"
	"net/http"
)

// The web view: static files (plain HTML, CSS and JavaScript, nothing
// fetched from elsewhere) embedded in the binary and served at /ui/. The
// page reads the REST API of the same server.
//
//go:embed ui
var uiFiles embed.FS

// uiContentPolicy lets the page load only its own files, call only its
// own server, and show the diagram it fetched (a blob: URL).
const uiContentPolicy = "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// registerUI serves the web view at /ui/ (and redirects /ui there).
func registerUI(mux *http.ServeMux) {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree always has ui/
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	mux.Handle("GET /ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", uiContentPolicy)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
}
