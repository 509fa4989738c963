//! Throwaway certificates for TLS and mTLS tests, generated at run time (never stored in
//! source), and a scratch directory for the PEM files clients and servers read.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A certificate authority that issues [`TestCert`]s.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A certificate issued by a [`TestCa`], with its private key.
#[derive(Clone, Debug)]
pub struct TestCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The private key, DER (PKCS#8).
    pub key_der: Vec<u8>,
}

impl TestCa {
    /// A self-signed CA named `common_name`.
    ///
    /// # Panics
    /// If key generation fails, which `rcgen` does not do for these parameters.
    pub fn new(common_name: &str) -> Self {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let cert = params.self_signed(&key).expect("a self-signed CA");
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's certificate, PEM: what a peer trusts.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A certificate for the DNS name `host`, signed by this CA.
    ///
    /// # Panics
    /// As [`TestCa::new`].
    pub fn issue(&self, host: &str) -> TestCert {
        let key = KeyPair::generate().expect("a key");
        let cert = CertificateParams::new(vec![host.to_owned()])
            .expect("certificate parameters")
            .signed_by(&key, &self.issuer)
            .expect("a signed certificate");
        TestCert {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }
}

static DIRS: AtomicU32 = AtomicU32::new(0);

/// A fresh scratch directory under the system's temp dir, removed when dropped.
pub struct TempFiles(PathBuf);

impl TempFiles {
    /// Creates `<temp>/<prefix>-<pid>-<n>`.
    ///
    /// # Panics
    /// If the directory cannot be created.
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Self(dir)
    }

    /// Writes `contents` to the file `name` in the directory and returns its path.
    ///
    /// # Panics
    /// If the file cannot be written.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("a scratch file");
        path
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
