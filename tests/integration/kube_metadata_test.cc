// Every write path of the Lease lock keeps what others wrote on the Lease:
// labels, annotations, ownerReferences and finalizers survive take-overs at
// expiry (after renewals seen only on the watch), handoff, release and the
// expiry of a leader that stopped without releasing. Real control plane.
// Runs in both wire formats (kube.lease_lock: protobuf, the default;
// kube.lease_lock_json: LEASEHOLD_KUBE_CONTENT_TYPE=json) and checks, from the
// client's counters, that the format asked for is the one used.
#include <nlohmann/json.hpp>

#include <cstdlib>

#include "backends/lease_watch_hub.h"
#include "core/runtime_access.h"
#include "kube/client.h"
#include "kube_support.h"

namespace leasehold {
namespace {

using namespace std::chrono_literals;
using namespace kubetest;
using nlohmann::json;

// The metadata a write must keep: all of it but the server's bookkeeping.
json kept(const kube::HttpResponse& r) {
  json m = json::parse(r.body, nullptr, false).value("metadata", json::object());
  m.erase("resourceVersion");
  m.erase("managedFields");
  return m;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  for (auto t = 0ms; t < limit; t += 20ms) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);  // real time: the control plane moves on its own
  }
  return pred();
}

TEST_F(KubeTest, EveryTakeOverPathKeepsLabelsAnnotationsOwnersAndFinalizers) {
  Admin admin;
  const std::string ns = kNs, name = unique("meta");
  // An owner that exists, so no garbage collector has a reason to act.
  auto owner = admin.send("POST", "/api/v1/namespaces/" + ns + "/configmaps",
                          json{{"metadata", {{"name", name + "-owner"}}}}.dump());
  ASSERT_EQ(owner.status, 201) << owner.body;
  json owner_ref = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", name + "-owner"},
                    {"uid", json::parse(owner.body)["metadata"]["uid"]}};
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata",
                 {{"name", name},
                  {"labels", {{"app.kubernetes.io/name", "meta"}}},
                  {"annotations", {{"example.com/note", "keep me"}}},
                  {"ownerReferences", json::array({owner_ref})},
                  {"finalizers", json::array({"example.com/keep"})}}},
                {"spec", {{"holderIdentity", "ghost"}, {"leaseDurationSeconds", 2}}}};
  auto made = admin.send("POST", "/apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases", lease.dump());
  ASSERT_EQ(made.status, 201) << made.body;
  const json before = kept(made);
  auto expect_kept = [&](const std::string& path) {
    auto got = admin.send("GET", lease_path(name));
    ASSERT_EQ(got.status, 200) << got.body;
    EXPECT_EQ(kept(got), before) << "metadata changed by the take-over through " << path;
  };

  Runtime rt(opts("elector"));
  Events ev;
  const std::string url = "k8s://" + ns + "/" + name;
  auto config = [&](const std::string& id) {
    ElectorConfig c = fast(url, id, ev);
    c.release_on_cancel = false;  // a stop leaves the lease to expire
    return c;
  };
  auto a = Elector::create(rt, config("a"));
  auto b = Elector::create(rt, config("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->start();
  (*b)->start();
  ASSERT_TRUE(wait_until([&] { return (*a)->leader() == "ghost" && (*b)->leader() == "ghost"; }, 10s));

  // 1. Expiry after a renewal seen only on the watch: the take-over PUT is
  //    at a version the electors never read.
  auto now = admin.send("GET", lease_path(name));
  json renewed = json::parse(now.body);
  renewed["spec"]["leaseDurationSeconds"] = 3;
  ASSERT_EQ(admin.send("PUT", lease_path(name), renewed.dump()).status, 200);
  ASSERT_TRUE(wait_until([&] { return (*a)->is_leader() || (*b)->is_leader(); }, 15s));
  Elector* first = (*a)->is_leader() ? a->get() : b->get();
  Elector* second = first == a->get() ? b->get() : a->get();
  const std::string first_id = first == a->get() ? "a" : "b", second_id = first_id == "a" ? "b" : "a";
  expect_kept("expiry after a watched renewal");

  // 2. Handoff: the leader writes the target, the target confirms.
  ASSERT_TRUE(first->handoff(second_id).ok());
  ASSERT_TRUE(ev.wait_count(second_id + " started", 1, 10s));
  ASSERT_TRUE(wait_until([&] { return second->is_leader(); }, 5s));
  expect_kept("handoff");

  // 3. Release: the new leader resigns; the other takes the free lease.
  second->resign();
  ASSERT_TRUE(ev.wait_count(first_id + " started", 2, 10s));
  ASSERT_TRUE(wait_until([&] { return first->is_leader(); }, 5s));
  expect_kept("release");

  // 4. A leader that stops without releasing: taken over at expiry.
  first->stop();
  ASSERT_TRUE(ev.wait_count(second_id + " started", 2, 15s));
  expect_kept("expiry of a stopped leader");

  // The wire format: every Lease write and answer in protobuf unless JSON was forced.
  auto client = RuntimeAccess::kube_client(rt);
  ASSERT_TRUE(client.ok());
  const kube::ClientStats st = (*client)->stats();
  const char* forced = std::getenv("LEASEHOLD_KUBE_CONTENT_TYPE");
  if (forced && std::string(forced) == "json") {
    EXPECT_EQ((*client)->lease_format(), kube::WireFormat::kJson);
    EXPECT_EQ(st.protobuf_sent, 0u);
    EXPECT_EQ(st.protobuf_received, 0u);
  } else {
    EXPECT_EQ((*client)->lease_format(), kube::WireFormat::kProtobuf);
    // Take-overs, a handoff and its confirmation, a release: at least 5 PUTs,
    // each sent and answered in protobuf; the shared watch too.
    EXPECT_GE(st.protobuf_sent, 5u);
    EXPECT_GE(st.protobuf_received, st.protobuf_sent + 1) << "answers and the watch stream in protobuf";
  }
  // Our own writes come back on the shared watch and are recognised by
  // their resourceVersion, undecoded (either wire format); the other
  // elector on the Lease still got them, or it could not have taken over.
  auto hub = RuntimeAccess::lease_watch_hub(rt);
  ASSERT_TRUE(hub);
  EXPECT_GE(hub->echoes_recognised(), 3u);
  std::printf("wire: lease format %s, %llu protobuf bodies sent, %llu protobuf answers and streams, %llu requests, "
              "%llu own writes recognised on the watch undecoded\n",
              (*client)->lease_format() == kube::WireFormat::kJson ? "json" : "protobuf",
              static_cast<unsigned long long>(st.protobuf_sent), static_cast<unsigned long long>(st.protobuf_received),
              static_cast<unsigned long long>(st.started),
              static_cast<unsigned long long>(hub->echoes_recognised()));

  second->stop();
  (*a)->wait();
  (*b)->wait();
  admin.send("PATCH", lease_path(name), R"({"metadata":{"finalizers":null}})");
  admin.send("DELETE", lease_path(name));
  admin.send("DELETE", "/api/v1/namespaces/" + ns + "/configmaps/" + name + "-owner");
}

}  // namespace
}  // namespace leasehold
