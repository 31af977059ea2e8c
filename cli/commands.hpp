// The subcommands of the loupe program. Each takes the whole argv (its options start at argv[2])
// and returns the process exit code.
#pragma once

namespace loupe::cli {

int run_demo(int argc, char** argv);
int run_train(int argc, char** argv);     // cli/train.cpp
int run_evaluate(int argc, char** argv);  // cli/evaluate.cpp
int run_predict(int argc, char** argv);   // cli/predict.cpp
int run_explain(int argc, char** argv);   // cli/explain.cpp
int run_profile(int argc, char** argv);   // cli/profile.cpp
int run_unix(int argc, char** argv);      // cli/unix.cpp
int run_evaluate_explanations(int argc, char** argv);  // cli/evaluate_explanations.cpp
int run_evaluate_tabular(int argc, char** argv);       // cli/evaluate_tabular.cpp (argv[2] = "tabular")
int run_evaluate_images(int argc, char** argv);        // cli/evaluate_images.cpp (argv[2] = "images")
int run_study(int argc, char** argv);                  // cli/study.cpp (argv[2] = "cxr")

}  // namespace loupe::cli
