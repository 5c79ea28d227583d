// Compute tickets: a DoGet whose ticket names a service (quiver/control.h) runs a request on
// the worker serving it and streams the result batches back from shared memory.
//
//   ticket: {"service": "ledger-sum", "request": {"plan": 7, ...}}   (JSON, at most 64 KiB)
//
// The gateway connects to the service's socket, asks its result schema (CMD_SERVICE_INFO),
// makes a private result channel of that schema (its capacity charged to the server's
// CreationBudget), subscribes, and sends CMD_SERVICE_CALL naming it. The stream is the tail
// of that channel, whose batches go out with no copy before gRPC, and ends when the worker
// has closed it and answered: RES_OK ends it cleanly; RES_ERROR_V2 ends it with that error
// (its chain in the message); a worker that dies ends it UNAVAILABLE naming the service.
#pragma once

#include <arrow/flight/server.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "flight/common.h"
#include "quiver/status.h"

namespace quiver::flight {

/// The largest compute ticket (its JSON): the control protocol's line limit, less room for
/// the envelope around the request.
inline constexpr size_t kMaxComputeTicket = 60 * 1024;

struct ComputeTicket {
  std::string service;
  nlohmann::json request = nlohmann::json::object();
};

/// True if `ticket` is a compute ticket (a JSON object), not a channel name.
bool IsComputeTicket(std::string_view ticket);

/// Reads {"service": NAME, "request": {...}}. kInvalidArgument naming what is wrong; larger
/// than kMaxComputeTicket is kResourceExhausted.
Result<ComputeTicket> ParseComputeTicket(std::string_view ticket);

/// What a service says of itself (CMD_SERVICE_INFO).
struct ServiceInfo {
  std::string name;
  std::string description;
  std::shared_ptr<arrow::Schema> schema;
};

/// Asks service `name` what it is. kNotFound naming the services there are if nobody
/// serves it.
Result<ServiceInfo> DescribeService(std::string_view name);

struct ComputeOptions {
  size_t capacity = size_t{64} << 20;  ///< the result channel's
  CreationBudget* budget = nullptr;    ///< what the result channel is charged to
  std::function<bool()> stop;          ///< true: the call was cancelled or the server stops
  std::chrono::milliseconds poll = std::chrono::milliseconds(100);
};

/// Runs `ticket` and returns the stream of its results (see above).
Result<std::unique_ptr<arrow::flight::FlightDataStream>> RunCompute(const ComputeTicket& ticket,
                                                                    ComputeOptions options);

/// Runs `ticket` as a DoExchange: the client's batches are validated (ValidateRemoteBatch)
/// and published into a private input channel of their schema, which the worker subscribes
/// to before anything is published (ServiceCall::inputs); the worker's results go back on
/// `writer` as they come, the same way as RunCompute's. The call ends when the client has
/// sent everything and the worker has answered; a worker's error or death ends it as for a
/// DoGet (noticed by the reading side at the client's next batch or its end).
arrow::Status RunExchange(const ComputeTicket& ticket, arrow::flight::FlightMessageReader& reader,
                          arrow::flight::FlightMessageWriter& writer, ComputeOptions options);

}  // namespace quiver::flight
