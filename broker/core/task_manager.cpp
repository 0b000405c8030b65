// task_manager: see task_manager.hpp.
#include "broker/core/task_manager.hpp"

#include "broker/core/server.hpp"

namespace respq::core {

struct task_manager::impl {};

task_manager::task_manager(server& s) : impl_(std::make_unique<impl>()), s_(s) {}
task_manager::~task_manager() = default;
void task_manager::on_list_push(std::string_view) {}
void task_manager::after_command() {}
void task_manager::before_write() {}
void task_manager::on_timer() {}
clock::time_point task_manager::next_deadline() const { return clock::time_point::max(); }
void task_manager::cron() {}
void task_manager::on_flush() {}
std::string task_manager::info() { return {}; }
void task_manager::on_results(std::vector<workers::http_result>&&) {}
void task_manager::recover() {}
std::size_t task_manager::in_flight() const { return 0; }
void task_manager::abandon_in_flight() {}
void task_manager::reconfigure() {}

}  // namespace respq::core
