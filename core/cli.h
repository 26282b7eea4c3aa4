/* The command line: gridpilot run | check | plugins | tasks | version. */
#ifndef GP_CLI_H
#define GP_CLI_H

/* Returns the process exit status. */
int gp_cli_main(int argc, char **argv);

#endif
