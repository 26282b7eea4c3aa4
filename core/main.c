/* gridpilot: a virtual power plant controller. */
#include "cli.h"

int main(int argc, char **argv)
{
    return gp_cli_main(argc, argv);
}
