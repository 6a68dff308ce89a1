package sqs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/internal/testpki"
	"github.com/spoolq/spool/server"
)

// TestServeSQSOverTLS: ServeSQS speaks the server's TLS, and queue URLs
// say https.
func TestServeSQSOverTLS(t *testing.T) {
	t.Parallel()
	p := testpki.New(t)
	s, err := server.New(context.Background(), server.Config{DataDir: t.TempDir(), TLSCert: p.CertFile, TLSKey: p.KeyFile})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeSQS(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, s.Close())
	})

	b, err := os.ReadFile(p.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(b))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	base := "https://" + ln.Addr().String()
	c := awssqs.New(awssqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(base),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", ""), RetryMaxAttempts: 1,
		HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second}})
	out, err := c.CreateQueue(t.Context(), &awssqs.CreateQueueInput{QueueName: aws.String("secure")})
	require.NoError(t, err)
	require.Equal(t, base+"/000000000000/secure", *out.QueueUrl)
	_, err = c.SendMessage(t.Context(), &awssqs.SendMessageInput{QueueUrl: out.QueueUrl, MessageBody: aws.String("over TLS")})
	require.NoError(t, err)

	plain := &http.Transport{}
	t.Cleanup(plain.CloseIdleConnections)
	res, err := (&http.Client{Transport: plain, Timeout: 5 * time.Second}).Post("http://"+ln.Addr().String()+"/", "application/x-www-form-urlencoded", nil)
	if err == nil {
		res.Body.Close()
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "plain HTTP on a TLS port")
	} else {
		require.False(t, errors.Is(err, context.Canceled))
	}
}
