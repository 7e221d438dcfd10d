//! The Janus configuration files for one RTSP mountpoint: only the streaming plugin and the
//! plain HTTP transport are loaded, the API listens on 127.0.0.1, ICE gathers on `lo` only and
//! no STUN/TURN server is set.

use std::path::{Path, PathBuf};

/// Where Debian installs Janus's modules.
pub const MODULES: &str = "/usr/lib/x86_64-linux-gnu/janus";

/// Every plugin Janus 1.1.2 ships but the streaming plugin: loading them costs startup time
/// and memory the comparison should not include.
const OTHER_PLUGINS: &str = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,\
libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_textroom.so,\
libjanus_videocall.so,libjanus_videoroom.so,libjanus_voicemail.so";

/// Every transport but plain HTTP.
const OTHER_TRANSPORTS: &str =
    "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so,libjanus_websockets.so";

/// One Janus instance's settings.
#[derive(Clone, Debug)]
pub struct JanusConfig {
    /// HTTP API port on 127.0.0.1.
    pub http_port: u16,
    /// The RTSP camera the mountpoint restreams (video only).
    pub rtsp_url: String,
    /// The mountpoint's numeric id (the `watch` request names it).
    pub mountpoint: u64,
    /// First and last UDP port for WebRTC media and for the RTSP feed's RTP.
    pub rtp_ports: (u16, u16),
}

impl JanusConfig {
    /// `janus.jcfg`: the core.
    pub fn core(&self, dir: &Path) -> String {
        let (lo, hi) = self.rtp_ports;
        format!(
            "general: {{\n\
             \tconfigs_folder = \"{dir}\"\n\
             \tplugins_folder = \"{MODULES}/plugins\"\n\
             \ttransports_folder = \"{MODULES}/transports\"\n\
             \tevents_folder = \"{MODULES}/events\"\n\
             \tloggers_folder = \"{MODULES}/loggers\"\n\
             \tdebug_level = 4\n\
             \tsession_timeout = 60\n\
             }}\n\
             media: {{\n\
             \trtp_port_range = \"{lo}-{hi}\"\n\
             }}\n\
             nat: {{\n\
             \tnice_debug = false\n\
             \tice_enforce_list = \"lo\"\n\
             \tignore_mdns = true\n\
             }}\n\
             plugins: {{\n\
             \tdisable = \"{OTHER_PLUGINS}\"\n\
             }}\n\
             transports: {{\n\
             \tdisable = \"{OTHER_TRANSPORTS}\"\n\
             }}\n\
             loggers: {{\n\
             \tdisable = \"libjanus_jsonlog.so\"\n\
             }}\n\
             events: {{\n\
             \tbroadcast = false\n\
             }}\n",
            dir = dir.display()
        )
    }

    /// `janus.transport.http.jcfg`: the API on 127.0.0.1 only, no admin API, no HTTPS.
    pub fn http(&self) -> String {
        format!(
            "general: {{\n\
             \tjson = \"compact\"\n\
             \tbase_path = \"/janus\"\n\
             \thttp = true\n\
             \tport = {}\n\
             \tip = \"127.0.0.1\"\n\
             \thttps = false\n\
             }}\n\
             admin: {{\n\
             \tadmin_http = false\n\
             \tadmin_https = false\n\
             }}\n",
            self.http_port
        )
    }

    /// `janus.plugin.streaming.jcfg`: one RTSP mountpoint, video only. The RTSP feed's RTP is
    /// received on 127.0.0.1.
    pub fn streaming(&self) -> String {
        let (lo, hi) = self.rtp_ports;
        format!(
            "general: {{\n\
             \trtp_port_range = \"{lo}-{hi}\"\n\
             }}\n\
             camera: {{\n\
             \ttype = \"rtsp\"\n\
             \tid = {}\n\
             \tdescription = \"camera\"\n\
             \taudio = false\n\
             \tvideo = true\n\
             \turl = \"{}\"\n\
             \trtspiface = \"127.0.0.1\"\n\
             \trtsp_reconnect_delay = 5\n\
             \trtsp_session_timeout = 0\n\
             \trtsp_timeout = 10\n\
             \trtsp_conn_timeout = 5\n\
             }}\n",
            self.mountpoint, self.rtsp_url
        )
    }

    /// Writes the three files into `dir`; returns the core file's path (`janus -C`).
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let core = dir.join("janus.jcfg");
        std::fs::write(&core, self.core(dir))?;
        std::fs::write(dir.join("janus.transport.http.jcfg"), self.http())?;
        std::fs::write(dir.join("janus.plugin.streaming.jcfg"), self.streaming())?;
        Ok(core)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> JanusConfig {
        JanusConfig {
            http_port: 18088,
            rtsp_url: "rtsp://127.0.0.1:8554/cam".into(),
            mountpoint: 7,
            rtp_ports: (40000, 40999),
        }
    }

    #[test]
    fn ice_is_confined_to_loopback_and_only_http_and_streaming_load() {
        let core = config().core(Path::new("/tmp/j"));
        assert!(core.contains("ice_enforce_list = \"lo\""));
        assert!(!core.contains("stun_server"));
        assert!(!core.contains("turn_server"));
        assert!(core.contains("rtp_port_range = \"40000-40999\""));
        assert!(!OTHER_PLUGINS.contains("libjanus_streaming.so"));
        assert!(!OTHER_TRANSPORTS.contains("libjanus_http.so"));
        assert!(core.contains("configs_folder = \"/tmp/j\""));
    }

    #[test]
    fn the_api_listens_on_loopback_and_the_mountpoint_names_the_camera() {
        let c = config();
        assert!(c.http().contains("ip = \"127.0.0.1\""));
        assert!(c.http().contains("port = 18088"));
        let s = c.streaming();
        assert!(s.contains("id = 7"));
        assert!(s.contains("url = \"rtsp://127.0.0.1:8554/cam\""));
        assert!(s.contains("type = \"rtsp\""));
    }
}
