// A throwaway PKI made at test time with OpenSSL: a CA, a server certificate for the
// loopback addresses, and a client certificate. ECDSA P-256 keys (fast to make, and
// accepted by both OpenSSL and Go's crypto/tls, i.e. kubectl).
#pragma once

#include <string>
#include <vector>

namespace switchyard::fake {

struct TestPki {
  std::string caCertPem, caKeyPem;
  std::string serverCertPem, serverKeyPem;
  std::string clientCertPem, clientKeyPem;  // CN=switchyard, O=system:nodes
};

// Every call makes a new, unrelated CA. Throws std::runtime_error if OpenSSL fails.
TestPki generateTestPki(const std::vector<std::string>& serverIPs = {"127.0.0.1", "::1"},
                        const std::vector<std::string>& serverNames = {"localhost"});

// Writes ca.crt ca.key server.crt server.key client.crt client.key into dir.
bool writeTestPki(const TestPki& pki, const std::string& dir, std::string& error);
// Reads them back; false if any is missing.
bool readTestPki(const std::string& dir, TestPki& pki);

}  // namespace switchyard::fake
