#include "tests/fake_apiserver/test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace switchyard::fake {
namespace {

struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertDeleter {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyDeleter>;
using Cert = std::unique_ptr<X509, CertDeleter>;

void check(bool ok, const char* what) {
  if (!ok) {
    throw std::runtime_error(std::string("test PKI: ") + what + " failed");
  }
}

Key newKey() {
  Key k(EVP_EC_gen("P-256"));
  check(k != nullptr, "EC key generation");
  return k;
}

void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, "certificate extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// issuer/issuerKey null: self-signed.
Cert makeCert(EVP_PKEY* key, const std::string& cn, const std::string& org, X509* issuer,
              EVP_PKEY* issuerKey, bool ca, const std::string& san, const std::string& eku) {
  Cert cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7L * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  if (!org.empty()) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0);
  }
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (ca) {
    addExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    addExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    addExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  } else {
    addExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    addExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    addExtension(cert.get(), signer, NID_ext_key_usage, eku);
    if (!san.empty()) {
      addExtension(cert.get(), signer, NID_subject_alt_name, san);
    }
  }
  check(X509_sign(cert.get(), issuerKey ? issuerKey : key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

std::string certPem(X509* c) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, c);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

std::string keyPem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

const char* kFiles[] = {"ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key"};

std::string* fieldOf(TestPki& p, int i) {
  std::string* fields[] = {&p.caCertPem,     &p.caKeyPem,      &p.serverCertPem,
                           &p.serverKeyPem,  &p.clientCertPem, &p.clientKeyPem};
  return fields[i];
}

}  // namespace

TestPki generateTestPki(const std::vector<std::string>& serverIPs,
                        const std::vector<std::string>& serverNames) {
  TestPki pki;
  Key caKey = newKey();
  // A name of its own per CA, as real CAs have: a client trusting another test CA then
  // fails with "unable to get local issuer certificate".
  unsigned char id[4];
  RAND_bytes(id, sizeof(id));
  char caName[64];
  std::snprintf(caName, sizeof(caName), "switchyard-test-ca-%02x%02x%02x%02x", id[0], id[1], id[2],
                id[3]);
  Cert ca = makeCert(caKey.get(), caName, "", nullptr, nullptr, true, "", "");
  std::string san;
  for (const auto& ip : serverIPs) {
    san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  }
  for (const auto& n : serverNames) {
    san += (san.empty() ? "" : ",") + std::string("DNS:") + n;
  }
  Key serverKey = newKey();
  Cert server = makeCert(serverKey.get(), "kube-apiserver", "", ca.get(), caKey.get(), false, san,
                         "serverAuth");
  Key clientKey = newKey();
  Cert client = makeCert(clientKey.get(), "switchyard", "system:nodes", ca.get(), caKey.get(),
                         false, "", "clientAuth");
  pki.caCertPem = certPem(ca.get());
  pki.caKeyPem = keyPem(caKey.get());
  pki.serverCertPem = certPem(server.get());
  pki.serverKeyPem = keyPem(serverKey.get());
  pki.clientCertPem = certPem(client.get());
  pki.clientKeyPem = keyPem(clientKey.get());
  return pki;
}

bool writeTestPki(const TestPki& pki, const std::string& dir, std::string& error) {
  TestPki copy = pki;
  for (int i = 0; i < 6; ++i) {
    std::string path = dir + "/" + kFiles[i];
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << *fieldOf(copy, i);
    if (!out) {
      error = path + ": cannot be written";
      return false;
    }
  }
  return true;
}

bool readTestPki(const std::string& dir, TestPki& pki) {
  for (int i = 0; i < 6; ++i) {
    std::ifstream in(dir + "/" + kFiles[i], std::ios::binary);
    if (!in) {
      return false;
    }
    std::ostringstream s;
    s << in.rdbuf();
    *fieldOf(pki, i) = s.str();
  }
  return true;
}

}  // namespace switchyard::fake
