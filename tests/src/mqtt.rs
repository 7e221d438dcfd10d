//! MQTT for tests and benchmarks: a real `mosquitto` on an ephemeral loopback port (with a
//! generated config, persistence and optional password file), and a recording subscriber.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::process::{Child, Command};

/// A free TCP port on 127.0.0.1 (free when this returns; nothing holds it).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A running `mosquitto`, killed on drop.
pub struct Mosquitto {
    dir: PathBuf,
    port: u16,
    /// The TLS listener's port, when it has one.
    tls_port: Option<u16>,
    child: Option<Child>,
}

/// A test CA and a server certificate for IP 127.0.0.1 it signed, as PEM files made by the
/// `openssl` command at run time (nothing secret is kept in the repository).
pub struct TestCerts {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TestCerts {
    /// Generates them (P-256 keys, valid 2 days) into `dir`.
    pub fn generate(dir: &std::path::Path) -> anyhow::Result<TestCerts> {
        let exe = "/usr/bin/openssl";
        if !std::path::Path::new(exe).is_file() {
            bail!("{exe} is missing: install Debian's openssl (debian-packages.txt)");
        }
        std::fs::create_dir_all(dir)?;
        let openssl = |args: &[&str]| -> anyhow::Result<()> {
            let out = std::process::Command::new(exe)
                .args(args)
                .current_dir(dir)
                .output()
                .context("running openssl")?;
            if !out.status.success() {
                bail!(
                    "openssl {}: {}",
                    args[0],
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(())
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=poolgate test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        )?;
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        )?;
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ])?;
        Ok(TestCerts {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        })
    }
}

impl Mosquitto {
    /// Starts mosquitto on a free port; with `auth`, only that user and password may connect.
    /// Persistence is on (saved every second and on SIGTERM), and a client's offline queue has
    /// no limit, so a persistent subscriber loses nothing across a restart.
    pub async fn start(name: &str, auth: Option<(&str, &str)>) -> anyhow::Result<Mosquitto> {
        Mosquitto::start_with(name, auth, None).await
    }

    /// [`Mosquitto::start`], and with `tls` also a TLS listener (see [`Mosquitto::tls_port`])
    /// presenting that server certificate.
    pub async fn start_with(
        name: &str,
        auth: Option<(&str, &str)>,
        tls: Option<&TestCerts>,
    ) -> anyhow::Result<Mosquitto> {
        let exe = "/usr/sbin/mosquitto";
        if !std::path::Path::new(exe).is_file() {
            bail!("{exe} is missing: install Debian's mosquitto (debian-packages.txt)");
        }
        let dir = std::env::temp_dir().join(format!("poolgate-mqtt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let mut conf = format!(
            "listener {port} 127.0.0.1\nuser root\npersistence true\npersistence_location {}/\n\
             autosave_interval 1\nmax_queued_messages 0\nlog_dest file {}/mosquitto.log\n",
            dir.display(),
            dir.display()
        );
        let tls_port = match tls {
            Some(certs) => {
                let tls_port = free_port()?;
                conf.push_str(&format!(
                    "listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
                    certs.ca.display(),
                    certs.server_cert.display(),
                    certs.server_key.display()
                ));
                Some(tls_port)
            }
            None => None,
        };
        match auth {
            None => conf.push_str("allow_anonymous true\n"),
            Some((user, password)) => {
                let file = dir.join("passwords");
                let out = std::process::Command::new("/usr/bin/mosquitto_passwd")
                    .args(["-b", "-c"])
                    .arg(&file)
                    .args([user, password])
                    .output()
                    .context("running mosquitto_passwd")?;
                if !out.status.success() {
                    bail!("mosquitto_passwd: {}", String::from_utf8_lossy(&out.stderr));
                }
                conf.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    file.display()
                ));
            }
        }
        std::fs::write(dir.join("mosquitto.conf"), conf)?;
        let mut m = Mosquitto {
            dir,
            port,
            tls_port,
            child: None,
        };
        m.restart().await?;
        Ok(m)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS listener's port (only after [`Mosquitto::start_with`] with certificates).
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Starts it again (after [`Mosquitto::stop`]) on the same port with the same state.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            // Its log goes to mosquitto.log; stderr only warns that it runs as root.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting mosquitto")?;
        self.child = Some(child);
        // Bounded: it listens within milliseconds.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait()? {
                bail!(
                    "mosquitto exited ({status}): {}",
                    std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("mosquitto does not listen on port {} after 10 s", self.port)
    }

    /// Stops it with SIGTERM (it saves its persistent state) and waits for it to exit.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(r) => {
                r?;
            }
            Err(_) => {
                child.kill().await?;
                bail!("mosquitto did not stop within 10 s of SIGTERM");
            }
        }
        Ok(())
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A message a [`Subscriber`] received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    /// The QoS it came at: the lower of the publisher's and the subscription's (1).
    pub qos: u8,
    /// When the subscriber's event loop got it.
    pub at: std::time::Instant,
}

/// An MQTT client that subscribes and records everything it receives; it reconnects by itself.
pub struct Subscriber {
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
    pub client: AsyncClient,
}

impl Subscriber {
    /// Connects to `127.0.0.1:port` as `client_id` and subscribes to `filters` at QoS 1; returns
    /// once the broker acknowledged the subscription.
    pub async fn connect(
        port: u16,
        client_id: &str,
        clean_session: bool,
        filters: &[&str],
    ) -> anyhow::Result<Subscriber> {
        let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
        options
            .set_clean_session(clean_session)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        for f in filters {
            client.subscribe(*f, QoS::AtLeastOnce).await?;
        }
        let received = Arc::new(Mutex::new(Vec::new()));
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let record = received.clone();
        let task = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        record.lock().unwrap().push(Received {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                            qos: p.qos as u8,
                            at: std::time::Instant::now(),
                        })
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .context("no SUBACK within 10 s")??;
        Ok(Subscriber {
            received,
            task,
            client,
        })
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// How many messages were received so far.
    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits until `done` accepts what was received, for at most `limit`; the error says how
    /// many messages came.
    pub async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> anyhow::Result<Vec<Received>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let got = self.received();
            if done(&got) {
                return Ok(got);
            }
            if tokio::time::Instant::now() >= deadline {
                let last: Vec<_> = got.iter().rev().take(3).collect();
                bail!(
                    "{what}: not there after {limit:?}; {} messages received, the last: {last:?}",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Publishes one message with `mosquitto_pub` (QoS 1).
pub async fn mosquitto_pub(
    port: u16,
    topic: &str,
    message: &str,
    retain: bool,
) -> anyhow::Result<()> {
    let mut command = Command::new("/usr/bin/mosquitto_pub");
    command.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-q",
        "1",
        "-t",
        topic,
        "-m",
        message,
    ]);
    if retain {
        command.arg("-r");
    }
    let out = tokio::time::timeout(Duration::from_secs(10), command.output())
        .await
        .context("mosquitto_pub hung")?
        .context("running mosquitto_pub (Debian's mosquitto-clients)")?;
    if !out.status.success() {
        bail!("mosquitto_pub: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}
