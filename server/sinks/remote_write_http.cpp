#include "server/sinks/remote_write_http.h"

#include "common/http_client.h"

namespace statherd::server {

Result<RwUrl> parse_remote_write_url(std::string_view url) {
  const std::string shown(url);
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0)
    return make_error("remote_write URL " + shown + " does not start with http://",
                      "e.g. http://127.0.0.1:9090/api/v1/write (https is not supported: put a "
                      "TLS proxy on loopback)");
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  RwUrl out;
  if (slash != std::string_view::npos) out.target = std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos)
    return make_error("remote_write URL " + shown + " carries user info",
                      "drop the user:password@ part; the server sends no credentials");
  if (Status st = parse_http_authority(authority, "remote_write URL " + shown,
                                       "http://127.0.0.1:9090/api/v1/write", out.host, out.port);
      !st)
    return st.error();
  for (char ch : shown)
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f)
      return make_error("remote_write URL " + shown + " contains a space or control character",
                        "percent-encode it (%20)");
  return out;
}

RwPostResult http_post(const RwUrl& url, const std::string& body,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       std::chrono::milliseconds timeout) {
  HttpRequest req;
  req.target = {url.host, url.port, url.target};
  req.method = HttpMethod::Post;
  req.body = body;
  req.headers = headers;
  req.max_response_body = 64 * 1024;
  HttpExchangeResult r = http_exchange(std::move(req), timeout);
  if (!r.ok())
    return {0, std::move(r.error),
            r.step == HttpStep::ReadHeader || r.step == HttpStep::ReadBody};
  RwPostResult out{r.status, ""};
  if (out.status < 200 || out.status >= 300) out.error = r.body.substr(0, 512);
  return out;
}

}  // namespace statherd::server
