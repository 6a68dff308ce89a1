// Package testpki makes certificates for tests: an authority, a server
// certificate for 127.0.0.1 and a client certificate, as PEM files.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// PKI is a certificate authority with a server certificate for
// 127.0.0.1 and a client certificate, as PEM files in a temp dir.
type PKI struct {
	// CAFile is the authority's certificate; CertFile and KeyFile the
	// server's (for 127.0.0.1); ClientCertFile and ClientKeyFile a
	// client's; OtherCA an authority that signed none of them.
	CAFile, CertFile, KeyFile              string
	ClientCertFile, ClientKeyFile, OtherCA string

	dir   string
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	n     int
}

// Client issues another client certificate, with common name cn.
func (p *PKI) Client(t testing.TB, cn string) (certFile, keyFile string) {
	t.Helper()
	p.n++
	return issue(t, p.dir, "client-"+strconv.Itoa(p.n), p.ca, p.caKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// New makes a PKI in a temp dir of t.
func New(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCA(t, "spool test CA")
	p := &PKI{dir: dir, ca: ca, caKey: caKey}
	p.CAFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	p.CertFile, p.KeyFile = issue(t, dir, "server", ca, caKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.ClientCertFile, p.ClientKeyFile = issue(t, dir, "client", ca, caKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: "worker-1"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	other, _ := newCA(t, "another CA")
	p.OtherCA = writePEM(t, dir, "other-ca.pem", "CERTIFICATE", other.Raw)
	return p
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

func issue(t testing.TB, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", kb)
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}
