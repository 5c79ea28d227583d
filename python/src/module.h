// The registration function of each bound type, called in this order by NB_MODULE
// (module.cc): a type is registered before the functions that take or return it.
#pragma once

#include <nanobind/nanobind.h>

namespace quiver::python {

void RegisterChannel(nanobind::module_& m);     // channel.cc
void RegisterTensorLoan(nanobind::module_& m);  // tensor_loan.cc
void RegisterFrames(nanobind::module_& m);      // frame_loan.cc: frame headers and loans
void RegisterPublisher(nanobind::module_& m);   // publisher.cc
void RegisterSample(nanobind::module_& m);      // sample.cc
void RegisterSubscriber(nanobind::module_& m);  // subscriber.cc
void RegisterControl(nanobind::module_& m);     // control.cc
void RegisterDiscovery(nanobind::module_& m);   // discovery.cc
void RegisterWorkflow(nanobind::module_& m);    // workflow.cc: clients, workers, handles

}  // namespace quiver::python
