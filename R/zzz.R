# Python's rbridge (python/prime_stats/rbridge.py) sources R/ into a plain environment instead of
# loading the package. There, as in the installed package (NAMESPACE), the ps_r_* generics must find
# their S3 methods: the environment is made a top-level one (.packageName) and the methods are
# registered in it. Inside the package namespace this does nothing.
.ps_register_methods <- function(env) {
  assign(".packageName", "primestats", envir = env)
  for (m in ls(env, pattern = "^ps_r_.*\\.(default|formula|coxph|glm|lrm)$")) {
    registerS3method(sub("\\.[^.]+$", "", m), sub("^.*\\.", "", m), get(m, envir = env), envir = env)
  }
}
if (!isNamespace(environment())) .ps_register_methods(environment())
